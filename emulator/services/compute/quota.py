"""Regional vCPU quota: what Azure checks before a VM gets a machine, and the Usages API. No HTTP.

Azure counts, per subscription and region, the vCPUs of every VM that holds a machine: running,
starting, stopping or stopped (a stopped VM keeps its allocation), but not deallocated. A create,
or a start of a deallocated VM, that would take a region past its "Total Regional vCPUs" limit or
its VM family's limit is refused with 409 ``OperationNotAllowed`` and a message naming the quota,
the limit, the usage and what is missing. Limits are settable at runtime (ops API); the emulator
also keeps, per region, the highest vCPU usage it ever allowed (the high-water mark), so a test can
show a limit held over a whole fleet's builds.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError, OperationNotAllowed
from emulator.core.regions import canonical

VM_TYPE = "Microsoft.Compute/virtualMachines"
TOTAL = "cores"
TOTAL_LABEL = "Total Regional vCPUs"
DEFAULT_LIMIT = 1000  # far above what one machine runs: nothing hits a quota unless a test lowers it
LIMITS_SETTING = "quota_limits"  # {region: {"cores": n, "<family>": n}}
HIGH_WATER_SETTING = "quota_high_water"  # {region: {"cores": n, "<family>": n}}
# Counters the real Usages list carries besides vCPUs, with Azure's default limits.
COUNTS = {"availabilitySets": ("Availability Sets", 2500), "virtualMachines": ("Virtual Machines", 25000),
          "virtualMachineScaleSets": ("Virtual Machine Scale Sets", 2500)}


@dataclass(frozen=True)
class Size:
    vcpus: int
    family: str  # the quota family, as the Usages API names it (``standardDSv5Family``)


# The sizes the factory, its tests and the usual Azure examples use (Azure's published vCPU counts).
SIZES: dict[str, Size] = {
    **{f"Standard_B{n}{s}": Size(n, "standardBSFamily") for n, s in ((1, "s"), (1, "ms"), (2, "s"), (2, "ms"),
                                                                       (4, "ms"), (8, "ms"))},
    **{f"Standard_D{n}s_v5": Size(n, "standardDSv5Family") for n in (2, 4, 8, 16, 32)},
    **{f"Standard_D{n}_v5": Size(n, "standardDv5Family") for n in (2, 4, 8, 16)},
    **{f"Standard_D{n}as_v5": Size(n, "standardDASv5Family") for n in (2, 4, 8, 16)},
    **{f"Standard_D{n}ds_v5": Size(n, "standardDDSv5Family") for n in (2, 4, 8, 16)},
    **{f"Standard_D{n}s_v3": Size(n, "standardDSv3Family") for n in (2, 4, 8, 16)},
    **{f"Standard_DS{k}_v2": Size(n, "standardDSv2Family") for k, n in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 16))},
    **{f"Standard_E{n}s_v5": Size(n, "standardESv5Family") for n in (2, 4, 8, 16)},
    **{f"Standard_F{n}s_v2": Size(n, "standardFSv2Family") for n in (2, 4, 8, 16)},
    **{f"Standard_A{n}_v2": Size(n, "standardAv2Family") for n in (1, 2, 4, 8)},
}
NAMING = re.compile(r"^(?:Standard|Basic)_([A-Z]+)(\d+)(?:-(\d+))?([a-z]*)(?:_v(\d+))?$")


def size_of(name: str) -> Size:
    """A size from the table; any other name by Azure's naming convention (family letters, vCPUs,
    ``-n`` for constrained vCPUs, features, ``_vN``). The family of an unlisted size is approximate."""
    known = SIZES.get(name) or next((s for n, s in SIZES.items() if n.lower() == name.lower()), None)
    if known is not None:
        return known
    m = NAMING.match(name)
    if m is None:
        return Size(1, "standardFamily")
    letters, vcpus, constrained, features, version = m.groups()
    family = letters + "".join(f for f in features.upper() if f in "ADS") + (f"v{version}" if version else "")
    return Size(int(constrained or vcpus), f"standard{family}Family")


def family_label(family: str) -> str:
    """``standardDSv5Family`` → ``Standard DSv5 Family vCPUs``, the Usages API's localized name."""
    core = family.removeprefix("standard").removesuffix("Family")
    return f"Standard {core} Family vCPUs"


# counting -----------------------------------------------------------------------------------
def holds_machine(vm: Any) -> bool:
    """A VM counts against the quota unless it is deallocated (a failed create never got a machine)."""
    return vm.internal.get("power") != "deallocated"


def _vms(ctx: Context, region: str) -> list[Any]:
    return [vm for vm in ctx.store.of_type(VM_TYPE, f"/subscriptions/{ctx.subscription}")
            if vm.body.get("location") == region]


def usage(ctx: Context, region: str) -> dict[str, int]:
    """vCPUs held now in ``region``: the total (``cores``) and per family."""
    out = {TOTAL: 0}
    for vm in _vms(ctx, region):
        if holds_machine(vm):
            size = size_of(str((vm.properties.get("hardwareProfile") or {}).get("vmSize") or ""))
            out[TOTAL] += size.vcpus
            out[size.family] = out.get(size.family, 0) + size.vcpus
    return out


def limits(ctx: Context, region: str) -> dict[str, int]:
    """The limits set for ``region`` (quotas not listed have the default)."""
    return dict((ctx.store.get_setting(LIMITS_SETTING, {}) or {}).get(region, {}))


def limit_of(ctx: Context, region: str, quota: str) -> int:
    return int(limits(ctx, region).get(quota, DEFAULT_LIMIT))


def high_water(ctx: Context, region: str) -> dict[str, int]:
    return dict((ctx.store.get_setting(HIGH_WATER_SETTING, {}) or {}).get(region, {}))


# the check -----------------------------------------------------------------------------------
def allocate(ctx: Context, region: str, size_name: str) -> None:
    """Refuse, as Azure does, a VM of ``size_name`` getting a machine in ``region`` past a limit.

    Call it before the VM is stored with a power state that holds a machine; then ``record``.
    """
    size = size_of(size_name)
    now = usage(ctx, region)
    for quota, label in ((size.family, f"{size.family} Cores"), (TOTAL, "Total Regional Cores")):
        limit, used = limit_of(ctx, region, quota), now.get(quota, 0)
        if used + size.vcpus > limit:
            raise exceeded(ctx, region, quota, label, limit, used, size.vcpus)


def record(ctx: Context, region: str) -> None:
    """Raise the region's high-water marks to its usage now (after a VM got a machine)."""
    marks = dict(ctx.store.get_setting(HIGH_WATER_SETTING, {}) or {})
    mine = dict(marks.get(region, {}))
    for quota, value in usage(ctx, region).items():
        mine[quota] = max(int(mine.get(quota, 0)), value)
    marks[region] = mine
    ctx.store.set_setting(HIGH_WATER_SETTING, marks)


def exceeded(ctx: Context, region: str, quota: str, label: str, limit: int, used: int, needed: int) -> ArmError:
    """Azure's 409 for a quota a VM would exceed, worded as the Compute resource provider words it."""
    new_limit = used + needed
    request = {"subscriptionId": ctx.subscription, "command": "openQuotaApprovalBlade", "quotas": [{
        "location": region, "providerId": "Microsoft.Compute", "resourceName": quota,
        "quotaRequest": {"properties": {"limit": new_limit, "unit": "Count", "name": {"value": quota}}}}]}
    blade = urllib.parse.quote(json.dumps(request, separators=(",", ":")), safe=":,[]")
    return OperationNotAllowed(
        f"Operation could not be completed as it results in exceeding approved {label} quota. Additional details - "
        f"Deployment Model: Resource Manager, Location: {region}, Current Limit: {limit}, Current Usage: {used}, "
        f"Additional Required: {needed}, (Minimum) New Limit Required: {new_limit}. Submit a request for Quota "
        "increase at https://aka.ms/ProdportalCRP/#blade/Microsoft_Azure_Capacity/UsageAndQuota.ReactView/"
        f"Parameters/{blade} by specifying parameters listed in the \u2018Details\u2019 section for deployment to "
        "succeed. "
        "Please read more about quota limits at https://docs.microsoft.com/en-us/azure/azure-supportability/"
        "per-vm-quota-requests"
    )


# the Usages API --------------------------------------------------------------------------------
def usage_list(ctx: Context, location: str) -> list[dict[str, Any]]:
    """``GET …/locations/{location}/usages``: counters, total vCPUs, then every family (listed or in use)."""
    region = canonical(location)
    now = usage(ctx, region)
    set_limits = limits(ctx, region)
    vm_count = len(_vms(ctx, region))

    def item(name: str, label: str, current: int, limit: int) -> dict[str, Any]:
        return {"unit": "Count", "currentValue": current, "limit": limit,
                "name": {"value": name, "localizedValue": label}}

    out = [item(name, label, vm_count if name == "virtualMachines" else 0, default)
           for name, (label, default) in COUNTS.items()]
    out.insert(1, item(TOTAL, TOTAL_LABEL, now[TOTAL], limit_of(ctx, region, TOTAL)))
    families = sorted({s.family for s in SIZES.values()} | (set(now) - {TOTAL}) | (set(set_limits) - {TOTAL}))
    out += [item(f, family_label(f), now.get(f, 0), limit_of(ctx, region, f)) for f in families]
    return out


# the ops API's view and setter -----------------------------------------------------------------
def view(ctx: Context, region: str) -> dict[str, Any]:
    region = canonical(region)
    now = usage(ctx, region)
    set_limits = limits(ctx, region)
    quotas = sorted(set(now) | set(set_limits) | {TOTAL}, key=lambda q: (q != TOTAL, q))
    return {"location": region, "defaultLimit": DEFAULT_LIMIT,
            "limits": {q: limit_of(ctx, region, q) for q in quotas},
            "usage": {q: now.get(q, 0) for q in quotas},
            "highWater": high_water(ctx, region)}


def regions_in_view(ctx: Context) -> list[str]:
    """Regions with a VM, a limit set or a high-water mark."""
    found = {vm.body.get("location") for vm in ctx.store.of_type(VM_TYPE, f"/subscriptions/{ctx.subscription}")}
    found |= set(ctx.store.get_setting(LIMITS_SETTING, {}) or {})
    found |= set(ctx.store.get_setting(HIGH_WATER_SETTING, {}) or {})
    return sorted(r for r in found if r)


def set_limits(ctx: Context, region: str, body: dict[str, Any]) -> dict[str, Any]:
    """Replace a region's limits: ``{"cores": 8, "families": {"standardDSv5Family": 4}}`` (``{}``: defaults)."""
    region = canonical(region)
    wanted: dict[str, Any] = {}
    if body.get("cores") is not None:
        wanted[TOTAL] = body["cores"]
    families = body.get("families") or {}
    if not isinstance(families, dict):
        raise ArmError("Field 'families' must map family names (e.g. standardDSv5Family) to limits.",
                       target="families")
    wanted.update(families)
    unknown = set(body) - {"cores", "families"}
    if unknown:
        raise ArmError(f"Unknown field(s) {', '.join(sorted(unknown))}; settable: cores, families.",
                       target=sorted(unknown)[0])
    for quota, value in wanted.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArmError(f"Limit '{quota}' must be a whole number of vCPUs >= 0.", target=quota)
        if quota != TOTAL and not re.fullmatch(r"standard[A-Za-z0-9]*Family", quota):
            raise ArmError(f"'{quota}' is not a VM family quota name (e.g. standardDSv5Family).", target=quota)
    every = dict(ctx.store.get_setting(LIMITS_SETTING, {}) or {})
    every[region] = wanted
    ctx.store.set_setting(LIMITS_SETTING, every)
    return view(ctx, region)


def reset_high_water(ctx: Context, region: str) -> dict[str, Any]:
    """Start a region's high-water marks again from its usage now."""
    region = canonical(region)
    marks = dict(ctx.store.get_setting(HIGH_WATER_SETTING, {}) or {})
    marks[region] = {q: v for q, v in usage(ctx, region).items()}
    ctx.store.set_setting(HIGH_WATER_SETTING, marks)
    return view(ctx, region)
