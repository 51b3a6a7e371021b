"""IP arithmetic: address prefixes as the network RP validates them, private IPs inside subnets, and
the loopback pool public IP addresses come from.

A public IP's address is where the VM's guest services listen (ssh, WinRM), so it must be a local
address: each one is a distinct address in the emulator's loopback pool (127.100.0.0/16 unless
LOCAL_AZURE_ADDRESS_POOL says otherwise, so two local Azures on one machine never share one). The allocation table lives in the store
(settings), so it survives a restart, and it is handed out next-fit: an address just released is
not handed out again until the pool wraps, which gives a stopped guest time to let go of it.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from emulator.core.context import Context
from emulator.core.errors import ArmError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_POOL_KEY = "network.public_ip_pool"  # {address: owning public IP id}
_CURSOR_KEY = "network.public_ip_cursor"  # offset in the pool where the next search starts
RESERVED_AT_START = 4  # Azure keeps .0 (network), .1 (gateway), .2 and .3 (DNS) of every subnet


def parse_prefix(value: Any, owner_id: str) -> Network:
    """A CIDR prefix, or the network RP's 400 for a malformed one or one with host bits set."""
    text = value if isinstance(value, str) else str(value)
    try:
        if not isinstance(value, str) or "/" not in value:
            raise ValueError(text)
        interface = ipaddress.ip_interface(value.strip())
    except ValueError as exc:
        raise ArmError(
            f"Address prefix {text} of resource {owner_id} is not formatted correctly. It should follow CIDR "
            "notation, for example 10.0.0.0/24.",
            code="InvalidAddressPrefixFormat",
        ) from exc
    network = interface.network
    if interface.ip != network.network_address:
        raise ArmError(
            f"The address prefix {text} in resource {owner_id} has an invalid CIDR notation. For the given prefix "
            f"length, the address prefix should be {network}.",
            code="InvalidCIDRNotation",
        )
    return network


def overlaps(a: Network, b: Network) -> bool:
    return a.version == b.version and a.overlaps(b)  # type: ignore[arg-type]


def contained(inner: Network, outers: list[Network]) -> bool:
    return any(inner.version == o.version and inner.subnet_of(o) for o in outers)  # type: ignore[arg-type]


def first_ipv4(nets: list[Network]) -> ipaddress.IPv4Network | None:
    return next((n for n in nets if isinstance(n, ipaddress.IPv4Network)), None)


def usable(net: ipaddress.IPv4Network, address: str) -> bool:
    """Inside the subnet and not one of the five addresses Azure reserves (first four, last one)."""
    ip = ipaddress.IPv4Address(address)
    first = int(net.network_address) + RESERVED_AT_START
    last = int(net.broadcast_address) - 1
    return first <= int(ip) <= last


def next_private(net: ipaddress.IPv4Network, taken: set[str]) -> str | None:
    """The lowest free address of a subnet: the first VM of a /24 gets .4, as in Azure."""
    first = int(net.network_address) + RESERVED_AT_START
    last = int(net.broadcast_address) - 1
    for value in range(first, last + 1):
        address = str(ipaddress.IPv4Address(value))
        if address not in taken:
            return address
    return None


def capacity(net: ipaddress.IPv4Network) -> int:
    return max(0, net.num_addresses - RESERVED_AT_START - 1)


# public addresses ----------------------------------------------------------------------------
def public_pool(ctx: Context) -> dict[str, str]:
    return dict(ctx.store.get_setting(_POOL_KEY, {}) or {})


def allocate_public(ctx: Context, owner_id: str, in_use: set[str]) -> str:
    """A loopback address nobody holds (the table, or any public IP's ``ipAddress`` in ``in_use``)."""
    network = ipaddress.IPv4Network(ctx.address_pool)
    if not network.network_address.is_loopback:
        raise ArmError(f"The public IP pool {network} must be a loopback range (127.0.0.0/8).", code="InternalServerError", status=500)
    pool = public_pool(ctx)
    held = set(pool) | in_use
    size = network.num_addresses
    cursor = int(ctx.store.get_setting(_CURSOR_KEY, 0) or 0)
    for step in range(size):
        offset = (cursor + step) % size
        if offset % 256 in (0, 255):
            continue
        address = str(network.network_address + offset)
        if address in held:
            continue
        pool[address] = owner_id
        ctx.store.set_setting(_POOL_KEY, pool)
        ctx.store.set_setting(_CURSOR_KEY, (offset + 1) % size)
        return address
    raise ArmError(
        f"Cannot create more than {len(held)} public IP addresses for this subscription in this region.",
        code="PublicIPCountLimitReached",
    )


def release_public(ctx: Context, address: str | None, owner_id: str) -> None:
    """Give an address back, if ``owner_id`` holds it."""
    if not address:
        return
    pool = public_pool(ctx)
    if pool.get(address, "").lower() == owner_id.lower():
        del pool[address]
        ctx.store.set_setting(_POOL_KEY, pool)
