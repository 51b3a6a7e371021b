"""Virtual machines: state, rules and the guest-driven state machine. No HTTP.

ARM's view of a VM follows its guest: a create or start settles when the guest reports it
booted, a powerOff or deallocate when it reports it stopped (``GuestEvents`` in runtime.py
call ``guest_booted`` / ``guest_stopped`` / ``guest_failed`` here). The VM keeps in ``internal``
its power state, whether it was generalized, the operation it waits on (``pending``: op id,
action and a token the completion checks), the guest's disk descriptor and boot facts.
Secrets stay out of the store: the admin password goes to the runtime at the first boot only,
and custom data never appears in the wire body.

Power actions live in power.py and Run Command in runcommand.py; both build on the state
primitives here (``begin``, ``preempt``, ``set_state``, ``boot_guest``, ``shutdown_guest``).
``capture_source(ctx, vm_id)`` is the interface for other services (managed images, gallery
image versions) that capture a stopped VM's OS disk.
"""

from __future__ import annotations

import copy
import logging
import re
import uuid
from typing import Any

from emulator.core import ids, lro
from emulator.core.context import Context
from emulator.core.errors import ArmError, InvalidParameter, OperationNotAllowed, group_not_found, resource_not_found
from emulator.core.lifecycle import on_remove, remove
from emulator.core.regions import canonical
from emulator.core.store import Resource
from emulator.guests.base import GuestRuntime, GuestSpec
from emulator.services.compute import disks, instance_view, quota, runtime, sources, vms
from emulator.services.resources.models import get_group

log = logging.getLogger("emulator.compute")

VM_TYPE = "Microsoft.Compute/virtualMachines"
UPDATE_SECONDS = 5.0
DEALLOCATE_SECONDS = 30.0
DELETE_SECONDS = 30.0
FAILED_CREATE_SECONDS = 20.0
PREEMPTED = {"code": "OperationPreempted", "message": "Operation execution has been preempted by a more recent operation."}
READ_ONLY = ("provisioningState", "instanceView", "vmId", "timeCreated")
FIXED = ("storageProfile", "osProfile", "networkProfile")
STOPPED = ("stopped", "deallocated")


# lookups ------------------------------------------------------------------------------------
def vm_rid(ctx: Context, group: str, name: str) -> str:
    return str(ids.resource_id(ctx.subscription, group, "Microsoft.Compute", "virtualMachines", name))


def get_vm(ctx: Context, group: str, name: str) -> Resource:
    g = get_group(ctx, group)
    found = ctx.store.get(vm_rid(ctx, g.name, name))
    if found is None:
        raise resource_not_found(VM_TYPE, name, g.name)
    return found


def list_vms(ctx: Context, group: str | None = None, location: str | None = None) -> list[Resource]:
    scope = get_group(ctx, group).id if group is not None else f"/subscriptions/{ctx.subscription}"
    found = ctx.store.of_type(VM_TYPE, scope)
    if location is not None:
        region = canonical(location)
        found = [vm for vm in found if vm.body.get("location") == region]
    return found


def wire(vm: Resource, *, with_view: bool = False) -> dict[str, Any]:
    """The VM as GET shows it; ``$expand=instanceView`` adds the instance view."""
    body = copy.deepcopy(vm.body)
    if with_view:
        body["properties"]["instanceView"] = instance_view.build(vm)
    return body


def vm_size(vm: Resource) -> str:
    return str((vm.properties.get("hardwareProfile") or {}).get("vmSize") or "")


def set_state(ctx: Context, vm: Resource, *, provisioning: str | None = None, power: str | None = None) -> None:
    if provisioning is not None:
        vm.properties["provisioningState"] = provisioning
    if power is not None:
        vm.internal["power"] = power
    vm.internal["state_time"] = ctx.now()


def not_allowed(vm: Resource, operation: str, state: str) -> OperationNotAllowed:
    return OperationNotAllowed(f"Operation '{operation}' is not allowed on VM '{vm.name}' since the VM is {state}.")


def refuse_if_deleting(vm: Resource, operation: str) -> None:
    if vm.properties.get("provisioningState") == "Deleting":
        raise OperationNotAllowed(
            f"Operation '{operation}' is not allowed on VM '{vm.name}' since the VM is marked for deletion. You can "
            "only retry the Delete operation (or wait for an ongoing one to complete)."
        )


# create / update ----------------------------------------------------------------------------
def put_vm(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str],
           fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    """Create a VM (guest boots; the operation settles when it is up) or update an existing one."""
    vms.validate_vm_name(name)
    g = get_group(ctx, group)
    rid = vm_rid(ctx, g.name, name)
    location = canonical(body.get("location"))
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise InvalidParameter("The value of parameter 'properties' is invalid.", target="properties")
    existing = ctx.store.get(rid)
    if existing is not None:
        return _update(ctx, existing, location, props, tags, fail_with)
    size = (props.get("hardwareProfile") or {}).get("vmSize")
    vms.required(size, "vmSize")
    storage = props.get("storageProfile") or {}
    os_disk_in = storage.get("osDisk") or {}
    if str(os_disk_in.get("createOption") or "FromImage").lower() != "fromimage":
        raise InvalidParameter(
            "The local Azure creates VMs from an image only: storageProfile.osDisk.createOption must be 'FromImage'.",
            target="osDisk.createOption",
        )
    if storage.get("dataDisks"):
        raise InvalidParameter("Data disks are not available in the local Azure.", target="dataDisks")
    source, reference = sources.resolve(ctx, storage.get("imageReference"), location)
    os_profile, guest = vms.os_profile(props.get("osProfile"), source["os_type"], source["os_state"])
    nics = _nics(ctx, rid, location, props.get("networkProfile"))
    os_disk = _os_disk(ctx, g.name, name, str(size), os_disk_in, source)
    rt = runtime.get(ctx)  # the request is valid: refuse it now if no guest can run
    quota.allocate(ctx, location, str(size))  # then Azure's regional and family vCPU quota
    now = ctx.now()

    out = {k: copy.deepcopy(v) for k, v in props.items() if k not in READ_ONLY and k != "userData"}
    out["storageProfile"] = {"imageReference": reference, "osDisk": os_disk, "dataDisks": [],
                             "diskControllerType": "SCSI"}
    if os_profile is None:
        out.pop("osProfile", None)
    else:
        out["osProfile"] = os_profile
    out["vmId"] = str(uuid.uuid4())
    out["timeCreated"] = instance_view.timestamp(now)
    out["provisioningState"] = "Creating"
    vm_body: dict[str, Any] = {"id": rid, "name": name, "type": VM_TYPE, "location": location, "tags": tags,
                               "properties": out}
    if body.get("zones"):
        vm_body["zones"] = list(body["zones"])
    token = uuid.uuid4().hex
    op = lro.start(ctx, provider="compute", location=location, handler="compute.vm_create",
                   args={"id": rid, "token": token},
                   delay=None if fail_with is None else ctx.duration(FAILED_CREATE_SECONDS), fail_with=fail_with)
    public_source = {k: v for k, v in source.items() if k != "disk"}
    vm = Resource(id=rid, type=VM_TYPE, body=vm_body, internal={
        "os_type": source["os_type"],
        "source": public_source,
        "disk": source["disk"],
        "power": "starting",
        "generalized": False,
        "pending": {"op": op, "action": "create", "token": token},
        "spec": {
            "computer_name": guest.get("computer_name"),
            "admin_username": guest.get("admin_username"),
            "ssh_public_keys": guest.get("ssh_public_keys", []),
            "custom_data": guest.get("custom_data"),
            "size": str(size),
        },
        "nics": [n["id"] for n in nics],
        "primary_nic": next(n["id"] for n in nics if n["primary"]),
        "nic_delete": [n["id"] for n in nics if n["delete"]],
        "os_disk_id": os_disk["managedDisk"]["id"],
        "created": now,
        "state_time": now,
    })
    disks.create_os_disk(ctx, group=g.name, name=os_disk["name"], location=location, vm_id=rid,
                         size_gb=int(os_disk["diskSizeGB"]), sku=os_disk["managedDisk"]["storageAccountType"],
                         source=source, image_reference=reference)
    from emulator.services.network import models as network

    for nic in nics:
        network.attach_nic(ctx, nic["id"], rid, primary=nic["primary"])
    ctx.store.put(vm)
    quota.record(ctx, location)
    answer = Resource(id=rid, type=VM_TYPE, body=copy.deepcopy(vm.body), internal={})  # "Creating", as ARM answers
    if fail_with is None:
        boot_guest(ctx, rt, vm, password=guest.get("admin_password"))
    return answer, True, op


def _nics(ctx: Context, vm_id: str, location: str, profile: Any) -> list[dict[str, Any]]:
    """The VM's NICs: each must exist in the VM's region and be free; exactly one is primary."""
    from emulator.services.network import models as network
    from emulator.services.network.common import invalid_reference

    profile = profile or {}
    if profile.get("networkInterfaceConfigurations"):
        raise InvalidParameter(
            "The local Azure attaches existing network interfaces only: use networkProfile.networkInterfaces.",
            target="networkInterfaceConfigurations",
        )
    refs = profile.get("networkInterfaces") or []
    if not refs:
        raise InvalidParameter("Required parameter 'networkProfile' is missing (null).", target="networkProfile")
    out = []
    for ref in refs:
        nic_id = str((ref or {}).get("id") or "")
        rprops = (ref or {}).get("properties") or {}
        nic = network.get_nic(ctx, nic_id, referenced_by=vm_id)
        if nic.body.get("location") != location:
            raise invalid_reference(nic_id, vm_id)
        user = (nic.properties.get("virtualMachine") or {}).get("id")
        if user and str(user).lower() != vm_id.lower():
            raise ArmError(f"Network Interface {nic.id} is used by existing VM {user}.", code="NicInUse")
        out.append({"id": nic.id, "primary": bool(rprops.get("primary")),
                    "delete": str(rprops.get("deleteOption") or "Detach").lower() == "delete"})
    primaries = [n for n in out if n["primary"]]
    if len(out) == 1:
        out[0]["primary"] = True
    elif len(primaries) != 1:
        raise InvalidParameter(
            f"Virtual machine {vm_id.rsplit('/', 1)[-1]} must have one network interface set as the primary.",
            code="VirtualMachineMustHaveOneNetworkInterfaceAsPrimary", target="networkInterfaces",
        )
    return out


def _os_disk(ctx: Context, group: str, vm_name: str, size: str, given: dict[str, Any],
             source: dict[str, Any]) -> dict[str, Any]:
    name = str(given.get("name") or f"{vm_name}_OsDisk_1_{uuid.uuid4().hex}")
    vms.entity_name(name, "osDisk.name")
    image_size = int(source.get("size_gb") or 30)
    size_gb = int(given.get("diskSizeGB") or image_size)
    if size_gb < image_size:
        raise InvalidParameter(
            f"The specified disk size {size_gb} GB is smaller than the size of the corresponding disk in the VM "
            f"image: {image_size} GB. This is not allowed. Please choose equal or greater size or do not specify an "
            "explicit size.",
            target="osDisk.diskSizeGB",
        )
    managed = dict(given.get("managedDisk") or {})
    premium = re.match(r"^Standard_[A-Z]+\d+[a-z]*s", size) is not None
    managed.setdefault("storageAccountType", "Premium_LRS" if premium else "Standard_LRS")
    managed["id"] = disks.disk_rid(ctx, group, name)
    return {
        "osType": source["os_type"],
        "name": name,
        "createOption": "FromImage",
        "caching": given.get("caching") or "ReadWrite",
        "managedDisk": managed,
        "deleteOption": given.get("deleteOption") or "Detach",
        "diskSizeGB": size_gb,
    }


def _update(ctx: Context, vm: Resource, location: str, props: dict[str, Any], tags: dict[str, str],
            fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    """A PUT on an existing VM: same region, nothing immutable changed; a failed VM is brought up again."""
    if vm.body["location"] != location:
        raise ArmError(
            f"The resource '{vm.name}' already exists in location '{vm.body['location']}' in resource group "
            f"'{ids.parse(vm.id).group}'. A resource with the same name cannot be created in location "
            f"'{location}'. Please select a new resource name.",
            code="InvalidResourceLocation", status=409,
        )
    refuse_if_deleting(vm, "update")
    vms.immutable_change(vm.properties, props, (vm.internal.get("spec") or {}).get("custom_data"))
    wanted = [str((r or {}).get("id") or "").lower() for r in (props.get("networkProfile") or {}).get("networkInterfaces") or []]
    if wanted and sorted(wanted) != sorted(n.lower() for n in vm.internal.get("nics", [])):
        raise vms.property_change("networkProfile")
    if vm.properties.get("provisioningState") == "Failed" and vm.internal.get("power") in ("stopped", "deallocated") \
            and not vm.internal.get("generalized") and not vm.internal.get("pending"):
        return _retry(ctx, vm, props, tags, fail_with)
    return _apply_update(ctx, vm, props, tags, fail_with)


def _retry(ctx: Context, vm: Resource, props: dict[str, Any], tags: dict[str, str],
           fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    """A PUT on a VM that failed to come up tries again (a retried create carries the password again)."""
    rt = runtime.get(ctx)
    if vm.internal.get("power") == "deallocated":
        quota.allocate(ctx, vm.body["location"], vm_size(vm))
    vm.body["tags"] = tags
    op = begin(ctx, vm, "start", delay=None, fail_with=fail_with)
    vm.internal["error"] = None
    set_state(ctx, vm, provisioning="Updating", power="starting" if fail_with is None else None)
    ctx.store.put(vm)
    quota.record(ctx, vm.body["location"])
    answer = Resource(id=vm.id, type=VM_TYPE, body=copy.deepcopy(vm.body), internal={})
    if fail_with is None:
        boot_guest(ctx, rt, vm, password=(props.get("osProfile") or {}).get("adminPassword") or None)
    return answer, False, op


def _apply_update(ctx: Context, vm: Resource, props: dict[str, Any], tags: dict[str, str] | None,
                  fail_with: dict[str, str] | None) -> tuple[Resource, bool, str]:
    if tags is not None:
        vm.body["tags"] = tags
    for key, value in props.items():
        if key not in READ_ONLY and key not in FIXED and key != "userData":
            vm.properties[key] = copy.deepcopy(value)
    pending = vm.internal.get("pending")
    if pending and pending["action"] == "create":
        ctx.store.put(vm)  # a retried create: answer with the operation already running
        return vm, False, str(pending["op"])
    if not pending:
        set_state(ctx, vm, provisioning="Updating")
    ctx.store.put(vm)
    op = lro.start(ctx, provider="compute", location=vm.body["location"], handler="compute.vm_update",
                   args={"id": vm.id}, delay=ctx.duration(UPDATE_SECONDS), fail_with=fail_with)
    return vm, False, op


def patch_vm(ctx: Context, group: str, name: str, body: dict[str, Any], tags: dict[str, str] | None,
             fail_with: dict[str, str] | None) -> tuple[Resource, str]:
    """``virtual_machines.begin_update``: tags and the mutable profiles."""
    vm = get_vm(ctx, group, name)
    refuse_if_deleting(vm, "update")
    props = body.get("properties") or {}
    vms.immutable_change(vm.properties, props, (vm.internal.get("spec") or {}).get("custom_data"))
    vm, _created, op = _apply_update(ctx, vm, props, tags, fail_with)
    return vm, op


# guests -------------------------------------------------------------------------------------
def _address(ctx: Context, vm: Resource) -> str:
    from emulator.services.network import models as network

    primary = vm.internal.get("primary_nic")
    if not primary:
        return ""
    try:
        return network.public_address_of_nic(ctx, primary) or ""
    except ArmError:
        return ""


def guest_spec(ctx: Context, vm: Resource, password: str | None = None) -> GuestSpec:
    spec = vm.internal.get("spec") or {}
    return GuestSpec(
        vm_id=vm.id,
        os_type=vm.internal.get("os_type", "Linux"),
        address=_address(ctx, vm),
        disk=vm.internal["disk"],
        computer_name=spec.get("computer_name"),
        admin_username=spec.get("admin_username"),
        admin_password=password,
        ssh_public_keys=list(spec.get("ssh_public_keys") or []),
        custom_data=spec.get("custom_data"),
        size=spec.get("size") or "Standard_B2s",
    )


def boot_guest(ctx: Context, rt: GuestRuntime, vm: Resource, password: str | None = None) -> None:
    """Ask the runtime to boot (or start) the guest; ``guest_booted`` settles the operation."""
    spec = guest_spec(ctx, vm, password)
    vm.internal.setdefault("spec", {})["address"] = spec.address
    ctx.store.put(vm)
    try:
        rt.boot(spec)
    except Exception as exc:
        log.exception("guest runtime could not boot %s", vm.id)
        guest_failed(ctx, vm.id, "OSProvisioningInternalError", f"The guest could not be started: {exc}")


def shutdown_guest(ctx: Context, rt: GuestRuntime, vm: Resource, force: bool) -> None:
    try:
        rt.shutdown(vm.id, force=force)
    except Exception as exc:
        log.exception("guest runtime could not shut down %s", vm.id)
        guest_failed(ctx, vm.id, "InternalExecutionError", f"The guest could not be shut down: {exc}")


def _current(ctx: Context, vm_id: str) -> Resource | None:
    vm = ctx.store.get(vm_id)
    if vm is None or vm.type.lower() != VM_TYPE.lower() or vm.properties.get("provisioningState") == "Deleting":
        return None
    return vm


def guest_booted(ctx: Context, vm_id: str) -> None:
    vm = _current(ctx, vm_id)
    if vm is None:
        return
    pending = vm.internal.get("pending") or {}
    action = pending.get("action")
    if action in ("powerOff", "deallocate") or (action == "restart" and pending.get("phase") == "stopping"):
        return  # a stop is under way: the guest is about to go down again
    set_state(ctx, vm, power="running")
    ctx.store.put(vm)
    if action in ("create", "start", "restart"):
        lro.settle(ctx, pending["op"])


def guest_stopped(ctx: Context, vm_id: str) -> None:
    vm = _current(ctx, vm_id)
    if vm is None:
        return
    pending = vm.internal.get("pending") or {}
    action = pending.get("action")
    if action == "restart" and pending.get("phase") == "stopping":
        pending["phase"] = "starting"
        set_state(ctx, vm, power="starting")
        boot_guest(ctx, runtime.get(ctx), vm)
        return
    if action in ("powerOff", "deallocate"):
        if action == "powerOff":
            set_state(ctx, vm, power="stopped")
        ctx.store.put(vm)
        lro.settle(ctx, pending["op"])
        return
    if vm.internal.get("power") not in ("deallocated", "deallocating"):
        set_state(ctx, vm, power="stopped")
    ctx.store.put(vm)
    if action in ("create", "start", "restart"):
        lro.settle(ctx, pending["op"], error={
            "code": "OSProvisioningInternalError",
            "message": "The virtual machine shut down before it finished starting.",
        })


def guest_failed(ctx: Context, vm_id: str, code: str, message: str) -> None:
    vm = _current(ctx, vm_id)
    if vm is None:
        return
    set_state(ctx, vm, power="stopped")
    pending = vm.internal.get("pending")
    if pending:
        ctx.store.put(vm)
        lro.settle(ctx, pending["op"], error={"code": code, "message": message})
        return
    vm.internal["error"] = {"code": code, "message": message}
    set_state(ctx, vm, provisioning="Failed")
    ctx.store.put(vm)


def recovery_specs(ctx: Context) -> dict[str, GuestSpec]:
    """Guests ARM believes are up (or coming up), for the runtime to adopt after a restart.

    VMs that were being stopped are left out: ``after_recover`` finishes their stop instead.
    """
    out = {}
    for vm in ctx.store.of_type(VM_TYPE, f"/subscriptions/{ctx.subscription}"):
        if vm.internal.get("power") in ("running", "starting") and not _stopping(vm) \
                and vm.properties.get("provisioningState") != "Deleting":
            out[vm.id] = guest_spec(ctx, vm)
    return out


def _stopping(vm: Resource) -> bool:
    pending = vm.internal.get("pending") or {}
    return pending.get("action") in ("powerOff", "deallocate") or (
        pending.get("action") == "restart" and pending.get("phase") == "stopping")


def after_recover(ctx: Context, rt: GuestRuntime) -> None:
    """Stops that were under way when the emulator went down finish now if the guest is off."""
    for vm in ctx.store.of_type(VM_TYPE, f"/subscriptions/{ctx.subscription}"):
        if not _stopping(vm):
            continue
        try:
            running = rt.is_running(vm.id)
        except Exception:
            running = False
        if running:
            shutdown_guest(ctx, rt, vm, force=False)
        else:
            guest_stopped(ctx, vm.id)


# actions --------------------------------------------------------------------------------------
def preempt(ctx: Context, vm: Resource) -> Resource:
    """A newer action replaces the pending one, whose operation fails as Azure's does."""
    pending = vm.internal.get("pending")
    if pending:
        lro.settle(ctx, pending["op"], error=dict(PREEMPTED))
        fresh = ctx.store.get(vm.id)
        if fresh is not None:
            fresh.internal["pending"] = None
            return fresh
    return vm


def begin(ctx: Context, vm: Resource, action: str, *, delay: float | None,
           fail_with: dict[str, str] | None, **extra: Any) -> str:
    """Start an action's operation and make it the one the VM waits on (``delay`` None: a guest event settles it)."""
    token = uuid.uuid4().hex
    if fail_with is not None and delay is None:
        delay = ctx.duration(UPDATE_SECONDS)
    op = lro.start(ctx, provider="compute", location=vm.body["location"], handler="compute.vm_action",
                   args={"id": vm.id, "action": action, "token": token}, delay=delay, fail_with=fail_with)
    vm.internal["pending"] = {"op": op, "action": action, "token": token, **extra}
    return op


def done_operation(ctx: Context, vm: Resource) -> str:
    """An action with nothing to do (the VM is already in that state) still answers with an operation."""
    return lro.start(ctx, provider="compute", location=vm.body["location"], handler="compute.noop", args={}, delay=0.0)


# delete -----------------------------------------------------------------------------------------
def begin_delete(ctx: Context, group: str, name: str, fail_with: dict[str, str] | None) -> tuple[str, str] | None:
    """Start deleting a VM (None: nothing to delete, ARM's 204). The guest goes when it settles."""
    get_group(ctx, group)
    vm = ctx.store.get(vm_rid(ctx, group, name))
    if vm is None:
        return None
    if vm.properties.get("provisioningState") == "Deleting" and vm.internal.get("deleting"):
        return str(vm.internal["deleting"]), vm.body["location"]
    vm = preempt(ctx, vm)
    op = lro.start(ctx, provider="compute", location=vm.body["location"], handler="compute.vm_delete",
                   args={"id": vm.id}, delay=ctx.duration(DELETE_SECONDS), fail_with=fail_with)
    vm.internal["deleting"] = op
    set_state(ctx, vm, provisioning="Deleting")
    ctx.store.put(vm)
    return op, vm.body["location"]


@on_remove(VM_TYPE)
def _vm_removed(ctx: Context, vm: Resource) -> None:
    """A VM leaving (deleted, or its group deleted): destroy the guest, free NICs, settle the OS disk."""
    pending = vm.internal.get("pending")
    if pending:
        lro.settle(ctx, pending["op"], error=dict(PREEMPTED))
    runtime.destroy(ctx, vm.id)
    from emulator.services.network import models as network

    to_delete = {n.lower() for n in vm.internal.get("nic_delete", [])}
    for nic_id in vm.internal.get("nics", []):
        try:
            network.detach_nic(ctx, nic_id)
            nic = ctx.store.get(nic_id)
            if nic is not None and nic_id.lower() in to_delete:
                remove(ctx, nic)
        except ArmError:
            log.warning("could not release NIC %s of %s", nic_id, vm.id)
    disk_id = vm.internal.get("os_disk_id")
    os_disk = (vm.properties.get("storageProfile") or {}).get("osDisk") or {}
    if disk_id:
        if str(os_disk.get("deleteOption", "Detach")).lower() == "delete":
            disk = ctx.store.get(disk_id)
            if disk is not None:
                remove(ctx, disk)
        else:
            disks.detach(ctx, disk_id)


# capture (for managed images and gallery image versions) --------------------------------------------
def capture_source(ctx: Context, vm_id: str) -> dict[str, Any]:
    """Capture a stopped VM's OS disk for an image built from it.

    Returns ``{"disk": <runtime.capture(vm_id)>, "os_type", "os_state" ("Generalized" once the VM
    was generalized, else "Specialized"), "hyper_v_generation", "location", "size_gb"}`` plus
    ``os_name`` / ``os_version`` where known. Raises ARM's 404 for a missing VM (or group) and
    409 OperationNotAllowed unless the VM is stopped or deallocated.
    """
    try:
        rid = ids.parse(vm_id)
    except ValueError:
        raise InvalidParameter(f"The value '{vm_id}' is not a virtual machine id.", target="id") from None
    vm = ctx.store.get(vm_id)
    if vm is None or vm.type.lower() != VM_TYPE.lower():
        group = ctx.store.get(str(ids.group_id(rid.subscription, rid.group or "")))
        if group is None:
            raise group_not_found(rid.group or "")
        raise resource_not_found(VM_TYPE, rid.name, group.name)
    refuse_if_deleting(vm, "capture")
    power = vm.internal.get("power")
    if power not in STOPPED or vm.internal.get("pending"):
        raise OperationNotAllowed(
            f"The operation 'capture' requires the Virtual Machine '{vm.name}' to be stopped or deallocated; it is "
            f"{power}."
        )
    disk = runtime.get(ctx).capture(vm.id)
    source = vm.internal.get("source") or {}
    os_disk = (vm.properties.get("storageProfile") or {}).get("osDisk") or {}
    return {
        "disk": disk,
        "os_type": vm.internal.get("os_type", "Linux"),
        "os_state": "Generalized" if vm.internal.get("generalized") else "Specialized",
        "hyper_v_generation": source.get("hyper_v_generation", "V1"),
        "location": vm.body["location"],
        "size_gb": int(os_disk.get("diskSizeGB") or source.get("size_gb") or 30),
        "os_name": source.get("os_name"),
        "os_version": source.get("os_version"),
    }


# operation completions ------------------------------------------------------------------------
def _waiting(ctx: Context, args: dict[str, Any]) -> Resource | None:
    """The VM an operation is about, if that operation is still the one it waits on."""
    vm = ctx.store.get(args["id"])
    if vm is None or (vm.internal.get("pending") or {}).get("token") != args.get("token"):
        return None
    return vm


FINAL_POWER = {"create": None, "start": "running", "restart": "running", "powerOff": "stopped",
               "deallocate": "deallocated"}


def _settled(ctx: Context, args: dict[str, Any]) -> None:
    vm = _waiting(ctx, args)
    if vm is None:
        return
    vm.internal["pending"] = None
    vm.internal["error"] = None
    set_state(ctx, vm, provisioning="Succeeded", power=FINAL_POWER.get(args.get("action", "create")))
    ctx.store.put(vm)


def _failed(ctx: Context, args: dict[str, Any]) -> None:
    vm = _waiting(ctx, args)
    if vm is None:
        return
    vm.internal["pending"] = None
    error = args.get("error") or {}
    if error.get("code") == PREEMPTED["code"]:
        ctx.store.put(vm)  # the newer action owns the VM's state now
        return
    vm.internal["error"] = error
    if vm.internal.get("power") == "starting" and args.get("action", "create") == "create":
        vm.internal["power"] = "deallocated"  # it never got a machine
    set_state(ctx, vm, provisioning="Failed")
    ctx.store.put(vm)


def _updated(ctx: Context, args: dict[str, Any]) -> None:
    vm = ctx.store.get(args["id"])
    if vm is not None and not vm.internal.get("pending") and vm.properties.get("provisioningState") == "Updating":
        set_state(ctx, vm, provisioning="Succeeded")
        ctx.store.put(vm)


def _update_failed(ctx: Context, args: dict[str, Any]) -> None:
    vm = ctx.store.get(args["id"])
    if vm is not None and vm.properties.get("provisioningState") == "Updating":
        vm.internal["error"] = args.get("error")
        set_state(ctx, vm, provisioning="Failed")
        ctx.store.put(vm)


def _deleted(ctx: Context, args: dict[str, Any]) -> None:
    vm = ctx.store.get(args["id"])
    if vm is not None:
        remove(ctx, vm)


def _delete_failed(ctx: Context, args: dict[str, Any]) -> None:
    vm = ctx.store.get(args["id"])
    if vm is not None:
        vm.internal["deleting"] = None
        vm.internal["error"] = args.get("error")
        set_state(ctx, vm, provisioning="Failed")
        ctx.store.put(vm)


lro.on_complete("compute.vm_create", _failed)(_settled)
lro.on_complete("compute.vm_action", _failed)(_settled)
lro.on_complete("compute.vm_update", _update_failed)(_updated)
lro.on_complete("compute.vm_delete", _delete_failed)(_deleted)
