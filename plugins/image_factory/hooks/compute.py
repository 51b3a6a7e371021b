"""Build VMs: create once, run commands through Run Command, power down, generalize, capture."""

from __future__ import annotations

from typing import Any

from image_factory.hooks.arm import AzureResourceManagerHook
from image_factory.hooks.lookup import get_or_none

LATEST = "latest"
HOST_KEY_FILE = "/etc/ssh/ssh_host_ed25519_key.pub"


class ComputeHook(AzureResourceManagerHook):
    """Virtual machines and managed images; every create finds what an earlier try made first."""

    # marketplace ------------------------------------------------------------------------------------
    def resolve_marketplace_version(self, location: str, publisher: str, offer: str, sku: str, version: str) -> str:
        """A concrete version: ``latest`` becomes the newest one, so a run records what it really built on."""
        if version.lower() != LATEST:
            return version
        listed = self.compute.virtual_machine_images.list(location, publisher, offer, sku)
        names = [str(item.name) for item in listed]
        if not names:
            raise ValueError(f"Marketplace image {publisher}:{offer}:{sku} has no versions in {location}.")
        return max(names, key=_version_key)

    # virtual machines -------------------------------------------------------------------------------
    def ensure_vm(
        self,
        resource_group: str,
        name: str,
        *,
        location: str,
        size: str,
        image: dict[str, str],
        os_type: str,
        computer_name: str,
        admin_username: str,
        ssh_public_key: str | None = None,
        admin_password: str | None = None,
        nic_id: str,
        tags: dict[str, str],
        specialized: bool = False,
        os_disk_gb: int | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        """The VM's id and whether this call created it; an existing VM of that name is returned untouched.

        An earlier try's VM still being created is waited for; one that failed to provision is replaced.
        The OS disk is deleted with the VM; the NIC is kept for a replacement (teardown removes it).
        """
        existing = self._settled_vm(resource_group, name)
        if existing is not None and existing.provisioning_state != "Failed":
            return {"id": str(existing.id), "created": False}
        if existing is not None:  # an earlier try's VM that never provisioned: replace it, never run two
            self.delete_vm(resource_group, name)
        body = _vm_body(
            location=location,
            size=size,
            image=image,
            os_type=os_type,
            computer_name=computer_name,
            admin_username=admin_username,
            ssh_public_key=ssh_public_key,
            admin_password=admin_password,
            nic_id=nic_id,
            tags=tags,
            specialized=specialized,
            os_disk_gb=os_disk_gb,
        )
        # wait=False: ARM's first answer (the VM exists, provisioning) is enough; the caller waits for the
        # guest in a deferrable task instead of holding a worker slot while it boots.
        poller = self.compute.virtual_machines.begin_create_or_update(
            resource_group, name, body, polling=self.lro() if wait else False
        )
        return {"id": str(poller.result().id), "created": True}

    def _settled_vm(self, resource_group: str, name: str, timeout: float = 1800.0, poll: float = 5.0) -> Any:
        """The VM once no operation of an earlier (perhaps killed) try is still creating or updating it."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            vm = get_or_none(self.compute.virtual_machines.get, resource_group, name)
            if vm is None or vm.provisioning_state not in {"Creating", "Updating"}:
                return vm
            if time.monotonic() > deadline:
                raise TimeoutError(f"VM {name} stayed {vm.provisioning_state} for {timeout:.0f} s")
            time.sleep(poll)

    def vm_state(self, resource_group: str, name: str) -> dict[str, str | None] | None:
        """``provisioning_state`` and ``power_state`` (e.g. "running", "deallocated"); None if absent."""
        vm = get_or_none(self.compute.virtual_machines.get, resource_group, name, expand="instanceView")
        if vm is None:
            return None
        statuses = (vm.instance_view.statuses if vm.instance_view else None) or []
        power = next((s.code.split("/", 1)[1] for s in statuses if (s.code or "").startswith("PowerState/")), None)
        return {"provisioning_state": vm.provisioning_state, "power_state": power}

    def image_reference(self, resource_group: str, name: str) -> dict[str, str | None]:
        """The image the VM was created from, with the exact Marketplace version Azure used."""
        ref = self.compute.virtual_machines.get(resource_group, name).storage_profile.image_reference
        return {
            "publisher": ref.publisher,
            "offer": ref.offer,
            "sku": ref.sku,
            "version": ref.version,
            "exact_version": ref.exact_version,
            "id": ref.id,
        }

    def deallocate(self, resource_group: str, name: str) -> None:
        self.compute.virtual_machines.begin_deallocate(resource_group, name, polling=self.lro()).result()

    def generalize(self, resource_group: str, name: str) -> None:
        """Mark the (deprovisioned, deallocated) VM generalized so it can be captured."""
        self.compute.virtual_machines.generalize(resource_group, name)

    def run_shell(self, resource_group: str, name: str, script: str, windows: bool) -> dict[str, str]:
        """Run a script through Run Command (no network path to the guest needed): ``stdout``, ``stderr``."""
        from azure.mgmt.compute.models import RunCommandInput

        command = RunCommandInput(
            command_id="RunPowerShellScript" if windows else "RunShellScript", script=script.splitlines()
        )
        result = self.compute.virtual_machines.begin_run_command(
            resource_group, name, command, polling=self.lro()
        ).result()
        statuses = [(str(s.code or ""), str(s.message or "")) for s in (result.value or [])]
        return _windows_streams(statuses) if windows else _linux_streams(statuses)

    def ssh_host_key(self, resource_group: str, name: str) -> str:
        """The guest's ed25519 host key as ``ssh-ed25519 AAAA…``, read out of band to pin it for SSH."""
        out = self.run_shell(resource_group, name, f"cat {HOST_KEY_FILE}", windows=False)
        for line in out["stdout"].splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "ssh-ed25519":
                return f"{parts[0]} {parts[1]}"
        raise RuntimeError(f"VM {name}: no ssh-ed25519 key in {HOST_KEY_FILE} (stderr: {out['stderr'][-300:]!r})")

    def delete_vm(self, resource_group: str, name: str) -> bool:
        """Delete the VM and wait; its OS disk goes too. False when there was no such VM."""
        vm = get_or_none(self.compute.virtual_machines.get, resource_group, name)
        if vm is None:
            return False
        os_disk = vm.storage_profile.os_disk if vm.storage_profile else None
        self.compute.virtual_machines.begin_delete(resource_group, name, polling=self.lro()).result()
        disk_name = os_disk.name if os_disk is not None else None
        if disk_name and get_or_none(self.compute.disks.get, resource_group, disk_name) is not None:
            self.compute.disks.begin_delete(
                resource_group, disk_name, polling=self.lro()
            ).result()  # a VM made without deleteOption
        return True

    # managed images ---------------------------------------------------------------------------------
    def ensure_managed_image(
        self,
        resource_group: str,
        name: str,
        *,
        location: str,
        vm_id: str | None = None,
        blob_uri: str | None = None,
        os_type: str = "Linux",
        hyper_v_generation: str,
        tags: dict[str, str],
    ) -> str:
        """A managed image captured from the (generalized) VM, or made from an uploaded generalized VHD
        (``blob_uri``); this run's own earlier image is kept."""
        existing = get_or_none(self.compute.images.get, resource_group, name)
        if existing is not None:
            from image_factory.naming import TAG_VERSION_RUN

            made_by = (existing.tags or {}).get(TAG_VERSION_RUN)
            if made_by != tags.get(TAG_VERSION_RUN):  # someone else's image: never adopt or overwrite it
                raise ValueError(
                    f"managed image {name} already exists in {resource_group}, made by run "
                    f"{made_by!r}; choose another version or delete that image"
                )
            return str(existing.id)
        from azure.mgmt.compute.models import Image, ImageOSDisk, ImageProperties, ImageStorageProfile, SubResource

        if (vm_id is None) == (blob_uri is None):
            raise ValueError("ensure_managed_image: give exactly one of vm_id and blob_uri")
        if blob_uri is not None:
            properties = ImageProperties(hyper_v_generation=hyper_v_generation, storage_profile=ImageStorageProfile(
                os_disk=ImageOSDisk(os_type=os_type, os_state="Generalized", blob_uri=blob_uri)))
        else:
            properties = ImageProperties(hyper_v_generation=hyper_v_generation,
                                         source_virtual_machine=SubResource(id=vm_id))
        body = Image(location=location, tags=tags, properties=properties)
        return str(
            self.compute.images.begin_create_or_update(resource_group, name, body, polling=self.lro()).result().id
        )


def _version_key(version: str) -> tuple[int, ...]:
    """Marketplace versions compare part by part as numbers ("0.20250113.1997" > "0.20241210.1960")."""
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


def _vm_body(
    *,
    location: str,
    size: str,
    image: dict[str, str],
    os_type: str,
    computer_name: str,
    admin_username: str,
    ssh_public_key: str | None,
    admin_password: str | None,
    nic_id: str,
    tags: dict[str, str],
    specialized: bool,
    os_disk_gb: int | None,
) -> Any:
    from azure.mgmt.compute import models as cm

    reference = (
        cm.ImageReference(id=image["id"])
        if "id" in image
        else cm.ImageReference(
            publisher=image["publisher"], offer=image["offer"], sku=image["sku"], version=image.get("version") or LATEST
        )
    )
    os_disk = cm.OSDisk(
        create_option="FromImage",
        delete_option="Delete",
        disk_size_gb=os_disk_gb,
        managed_disk=cm.ManagedDiskParameters(storage_account_type="StandardSSD_LRS"),
    )
    # The NIC outlives the VM (Detach): a retry that replaces a VM which failed to provision needs it
    # again, and the run's teardown deletes it with the resource group.
    nic = cm.NetworkInterfaceReference(
        id=nic_id, properties=cm.NetworkInterfaceReferenceProperties(primary=True, delete_option="Detach")
    )
    return cm.VirtualMachine(
        location=location,
        tags=tags,
        properties=cm.VirtualMachineProperties(
            hardware_profile=cm.HardwareProfile(vm_size=size),
            storage_profile=cm.StorageProfile(image_reference=reference, os_disk=os_disk),
            network_profile=cm.NetworkProfile(network_interfaces=[nic]),
            # a specialized image keeps its identity: Azure refuses an osProfile for it
            os_profile=None
            if specialized
            else _os_profile(cm, os_type, computer_name, admin_username, ssh_public_key, admin_password),
        ),
    )


def _os_profile(
    cm: Any,
    os_type: str,
    computer_name: str,
    admin_username: str,
    ssh_public_key: str | None,
    admin_password: str | None,
) -> Any:
    if os_type == "Windows":
        if not admin_password:
            raise ValueError("A Windows VM needs admin_password.")
        return cm.OSProfile(
            computer_name=computer_name,
            admin_username=admin_username,
            admin_password=admin_password,
            windows_configuration=cm.WindowsConfiguration(provision_vm_agent=True),
        )
    if not ssh_public_key and not admin_password:
        raise ValueError("A Linux VM needs ssh_public_key or admin_password.")
    keys = (
        [cm.SshPublicKey(path=f"/home/{admin_username}/.ssh/authorized_keys", key_data=ssh_public_key)]
        if ssh_public_key
        else []
    )
    return cm.OSProfile(
        computer_name=computer_name,
        admin_username=admin_username,
        admin_password=admin_password,
        linux_configuration=cm.LinuxConfiguration(
            disable_password_authentication=admin_password is None,
            ssh=cm.SshConfiguration(public_keys=keys) if keys else None,
        ),
    )


def _linux_streams(statuses: list[tuple[str, str]]) -> dict[str, str]:
    """RunCommandLinux folds both streams into one message: ``…[stdout]\\n<out>\\n[stderr]\\n<err>``."""
    text = "\n".join(message for _code, message in statuses)
    _, _, rest = text.partition("[stdout]\n")
    stdout, _, stderr = rest.partition("\n[stderr]\n")
    return {"stdout": stdout, "stderr": stderr}


def _windows_streams(statuses: list[tuple[str, str]]) -> dict[str, str]:
    """RunPowerShellScript answers with one status per stream (``ComponentStatus/StdOut/…``, ``…/StdErr/…``)."""
    streams = {"stdout": "", "stderr": ""}
    for code, message in statuses:
        stream = code.split("/")[1].lower() if code.count("/") >= 2 else ""
        if stream in streams:
            streams[stream] = message
    return streams
