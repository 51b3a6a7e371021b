"""Helpers of the trigger tests: drive ``trigger.run()`` on an event loop, and a local Azure with a clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.triggers.base import BaseTrigger

from tests.localazure import LocalAzure

TIMED_CONN = "timed_trigger_azure"


def first_event(trigger: BaseTrigger, limit: float = 120.0) -> dict[str, Any]:
    """Run the trigger as the triggerer does (``run().asend(None)``) and return its first event's payload.

    ``limit`` only stops a hung test; it is no assertion on speed.
    """

    async def drive() -> dict[str, Any]:
        events = trigger.run()
        try:
            event = await events.asend(None)
        finally:
            await events.aclose()
        return dict(event.payload)

    return asyncio.run(asyncio.wait_for(drive(), limit))


def round_trip(trigger: BaseTrigger) -> BaseTrigger:
    """Rebuild the trigger from ``serialize()`` the way the triggerer does: import the class path."""
    from airflow._shared.module_loading import import_string  # what the triggerer uses

    classpath, kwargs = trigger.serialize()
    assert all(isinstance(v, str | int | float | bool | list | type(None)) for v in kwargs.values()), kwargs
    rebuilt: BaseTrigger = import_string(classpath)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    return rebuilt


@pytest.fixture(scope="module")
def timed_azure(tmp_path_factory: pytest.TempPathFactory, real_azure: str | None) -> Iterator[LocalAzure]:
    """A local Azure at 2% of Azure's durations: the source region replicates in ~1 s, others in 3-5 s,
    so a trigger sees progress (and can time out) between its polls."""
    if real_azure:
        pytest.skip("emulator-only test")
    emu = LocalAzure(tmp_path_factory.mktemp("timed-trigger-azure"), time_factor=0.02).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def timed_arm(timed_azure: LocalAzure) -> Any:
    return timed_azure.hook(TIMED_CONN)
