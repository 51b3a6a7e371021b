"""Helpers for the service hooks' tests: what the emulator served, and a build network in one call."""

from __future__ import annotations

from typing import Any

from tests.localazure import LocalAzure


def requests_since(emu: LocalAzure, seq: int) -> list[dict[str, Any]]:
    """Every request the emulator served after ``seq`` (its log's running number)."""
    return list(emu.ops("GET", "requests", since=seq)["entries"])


def request_seq(emu: LocalAzure) -> int:
    return int(emu.ops("GET", "requests")["total"])


def inventory(emu: LocalAzure, rtype: str, **tag: str) -> list[dict[str, Any]]:
    """The emulator's own record of what exists, by type (and tag ``name=value``)."""
    params: dict[str, str] = {"type": rtype}
    if tag:
        ((name, value),) = tag.items()
        params["tag"] = f"{name}={value}"
    return list(emu.ops("GET", "inventory", **params)["value"])
