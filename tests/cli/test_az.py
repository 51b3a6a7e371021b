"""The Azure CLI against the local Azure through scripts/az-local: groups, locks, RBAC, galleries.

Every command checks az's exit code and the JSON it printed, as a user's script would.
"""

from __future__ import annotations

import uuid

import pytest

from tests.cli.azcli import AzCli, needs_az

pytestmark = [pytest.mark.cli, needs_az, pytest.mark.guests("simulated")]
LOCATION = "westeurope"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cli_group(az_local: AzCli):  # type: ignore[no-untyped-def]
    name = _name("cli")
    az_local.ok("group", "create", "-n", name, "-l", LOCATION, "--tags", "factory=tests")
    yield name
    az_local.run("lock", "delete", "-n", "cli-lock", "-g", name)
    az_local.run("group", "delete", "-n", name, "--yes")


def test_resource_group_create_show_list_exists_delete(az_local: AzCli, local_azure):
    name = _name("cli")
    created = az_local.ok("group", "create", "-n", name, "-l", LOCATION, "--tags", "factory=tests", "run=1")
    sub = local_azure.info["subscription_id"]
    assert created["id"] == f"/subscriptions/{sub}/resourceGroups/{name}"
    assert (created["name"], created["location"]) == (name, LOCATION)
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert created["tags"] == {"factory": "tests", "run": "1"}

    shown = az_local.ok("group", "show", "-n", name)
    assert shown["id"] == created["id"] and shown["tags"]["run"] == "1"
    assert name in [g["name"] for g in az_local.ok("group", "list")]
    assert [g["name"] for g in az_local.ok("group", "list", "--tag", "run=1")] == [name]
    assert az_local.run("group", "exists", "-n", name).stdout.strip() == "true"

    az_local.ok("group", "delete", "-n", name, "--yes")
    assert az_local.run("group", "exists", "-n", name).stdout.strip() == "false"


def test_missing_group_prints_arm_code_and_exits_3(az_local: AzCli):
    res = az_local.run("group", "show", "-n", "no-such-group-for-cli")
    assert res.rc == 3
    assert "(ResourceGroupNotFound) Resource group 'no-such-group-for-cli' could not be found." in res.stderr
    assert res.stdout == ""


def test_lock_blocks_group_delete(az_local: AzCli, cli_group: str, local_azure):
    lock = az_local.ok("lock", "create", "-n", "cli-lock", "-g", cli_group, "--lock-type", "CanNotDelete",
                       "--notes", "keep")
    assert (lock["level"], lock["notes"], lock["type"]) == ("CanNotDelete", "keep", "Microsoft.Authorization/locks")
    assert [x["name"] for x in az_local.ok("lock", "list", "-g", cli_group)] == ["cli-lock"]
    assert az_local.ok("lock", "show", "-n", "cli-lock", "-g", cli_group)["id"] == lock["id"]

    res = az_local.run("group", "delete", "-n", cli_group, "--yes")
    assert res.rc == 1
    sub = local_azure.info["subscription_id"]
    assert (
        f"(ScopeLocked) The scope '/subscriptions/{sub}/resourcegroups/{cli_group}' cannot perform delete operation "
        f"because following scope(s) are locked: '/subscriptions/{sub}/resourceGroups/{cli_group}'."
    ) in res.stderr
    assert az_local.run("group", "exists", "-n", cli_group).stdout.strip() == "true"

    az_local.ok("lock", "delete", "-n", "cli-lock", "-g", cli_group)
    missing = az_local.run("lock", "show", "-n", "cli-lock", "-g", cli_group)
    assert missing.rc == 3 and "(LockNotFound)" in missing.stderr
    az_local.ok("group", "delete", "-n", cli_group, "--yes")
    assert az_local.run("group", "exists", "-n", cli_group).stdout.strip() == "false"


def test_role_assignment_by_object_id(az_local: AzCli, cli_group: str, local_azure):
    principal = str(uuid.uuid4())
    scope = az_local.ok("group", "show", "-n", cli_group)["id"]
    created = az_local.ok("role", "assignment", "create", "--assignee-object-id", principal,
                          "--assignee-principal-type", "ServicePrincipal", "--role", "Contributor", "--scope", scope)
    assert created["principalId"] == principal and created["scope"] == scope
    assert created["roleDefinitionId"].endswith("/roleDefinitions/b24988ac-6180-42a0-ab88-20f7382dd24c")
    listed = az_local.ok("role", "assignment", "list", "-g", cli_group)
    assert [(a["principalId"], a["roleDefinitionName"]) for a in listed] == [(principal, "Contributor")]
    again = az_local.run("role", "assignment", "create", "--assignee-object-id", principal,
                         "--assignee-principal-type", "ServicePrincipal", "--role", "Contributor", "--scope", scope,
                         "--name", str(uuid.uuid4()))
    # az treats ARM's 409 RoleAssignmentExists as "already done" and shows the existing assignment
    assert again.rc == 0 and again.json["id"] == created["id"]
    refused = [e for e in local_azure.ops("GET", "requests")["entries"]
               if e["operation"] == "Microsoft.Authorization/roleAssignments/write" and e["status"] == 409]
    assert refused, "the second create should have been refused with 409"
    assert len(az_local.ok("role", "assignment", "list", "-g", cli_group)) == 1
    az_local.ok("role", "assignment", "delete", "--ids", created["id"])
    assert az_local.ok("role", "assignment", "list", "-g", cli_group) == []


# galleries ------------------------------------------------------------------------------------------
def _ssh_public_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " cli-test"


def _generalized_managed_image(arm, group: str) -> str:  # type: ignore[no-untyped-def]
    """A managed image captured from a generalized Debian VM, built with the SDK as the factory does.

    The network and compute SDKs send dict bodies as they are, so these use ARM's wire shape.
    """
    vnet = arm.network.virtual_networks.begin_create_or_update(group, "src-vnet", {
        "location": LOCATION,
        "properties": {"addressSpace": {"addressPrefixes": ["10.30.0.0/16"]},
                       "subnets": [{"name": "default", "properties": {"addressPrefix": "10.30.0.0/24"}}]},
    }).result()
    # a public IP gives the simulated guest its own loopback address to listen on
    pip = arm.network.public_ip_addresses.begin_create_or_update(group, "src-pip", {
        "location": LOCATION, "sku": {"name": "Standard"}, "properties": {"publicIPAllocationMethod": "Static"},
    }).result()
    nic = arm.network.network_interfaces.begin_create_or_update(group, "src-nic", {
        "location": LOCATION,
        "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
            "subnet": {"id": vnet.subnets[0].id}, "publicIPAddress": {"id": pip.id}}}]},
    }).result()
    vms = arm.compute.virtual_machines
    vm = vms.begin_create_or_update(group, "src-vm", {
        "location": LOCATION,
        "properties": {
            "hardwareProfile": {"vmSize": "Standard_B2s"},
            "storageProfile": {
                "imageReference": {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
                "osDisk": {"createOption": "FromImage", "managedDisk": {"storageAccountType": "Standard_LRS"}},
            },
            "osProfile": {
                "computerName": "src-vm", "adminUsername": "builder",
                "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                    {"path": "/home/builder/.ssh/authorized_keys", "keyData": _ssh_public_key()}]}},
            },
            "networkProfile": {"networkInterfaces": [{"id": nic.id}]},
        },
    }).result()
    vms.begin_deallocate(group, "src-vm").result()
    vms.generalize(group, "src-vm")
    image = arm.compute.images.begin_create_or_update(group, "src-image", {
        "location": LOCATION, "properties": {"sourceVirtualMachine": {"id": vm.id}, "hyperVGeneration": "V2"},
    }).result()
    return str(image.id)


def test_gallery_definition_and_version(az_local: AzCli, cli_group: str, arm):
    group, gallery, definition = cli_group, _name("gal").replace("-", "_"), "debian12-golden"
    created = az_local.ok("sig", "create", "-g", group, "-r", gallery, "--description", "golden images")
    assert (created["name"], created["location"]) == (gallery, LOCATION)
    assert created["provisioningState"] == "Succeeded" and created["description"] == "golden images"
    assert az_local.ok("sig", "show", "-g", group, "-r", gallery)["id"] == created["id"]
    assert [g["name"] for g in az_local.ok("sig", "list", "-g", group)] == [gallery]
    assert gallery in [g["name"] for g in az_local.ok("sig", "list")]  # subscription-wide, older api-version

    image_def = az_local.ok("sig", "image-definition", "create", "-g", group, "-r", gallery, "-i", definition,
                            "--publisher", "Contoso", "--offer", "golden", "--sku", "debian12",
                            "--os-type", "Linux", "--os-state", "Generalized", "--hyper-v-generation", "V2")
    assert image_def["provisioningState"] == "Succeeded"
    assert (image_def["osType"], image_def["osState"], image_def["hyperVGeneration"]) == ("Linux", "Generalized", "V2")
    assert image_def["identifier"] == {"publisher": "Contoso", "offer": "golden", "sku": "debian12"}
    shown = az_local.ok("sig", "image-definition", "show", "-g", group, "-r", gallery, "-i", definition)
    assert shown["id"] == image_def["id"]
    assert [d["name"] for d in az_local.ok("sig", "image-definition", "list", "-g", group, "-r", gallery)] == [definition]

    image_id = _generalized_managed_image(arm, group)
    version = az_local.ok("sig", "image-version", "create", "-g", group, "-r", gallery, "-i", definition,
                          "-e", "1.0.0", "--managed-image", image_id, "--target-regions", LOCATION,
                          "--replica-count", "1")
    assert version["name"] == "1.0.0" and version["provisioningState"] == "Succeeded"
    assert version["storageProfile"]["source"]["id"].lower() == image_id.lower()
    assert [r["name"] for r in version["publishingProfile"]["targetRegions"]] in (["westeurope"], ["West Europe"])
    shown = az_local.ok("sig", "image-version", "show", "-g", group, "-r", gallery, "-i", definition, "-e", "1.0.0")
    assert shown["id"] == version["id"] and shown["provisioningState"] == "Succeeded"
    listed = az_local.ok("sig", "image-version", "list", "-g", group, "-r", gallery, "-i", definition)
    assert [v["name"] for v in listed] == ["1.0.0"]

    missing = az_local.run("sig", "image-version", "show", "-g", group, "-r", gallery, "-i", definition, "-e", "9.9.9")
    assert missing.rc == 3 and "(ResourceNotFound)" in missing.stderr
    no_gallery = az_local.run("sig", "show", "-g", group, "-r", "nogallery")
    assert no_gallery.rc == 3 and "(ResourceNotFound)" in no_gallery.stderr
