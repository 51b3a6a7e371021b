"""What the factory's polling triggers share: a clock that survives a triggerer restart, quiet logs,
and one error shape.

The deadline counts from ``started_at``, an epoch the operator passes when it defers (or set at
construction) and that ``serialize()`` keeps: a triggerer that restarts rebuilds the trigger from
those kwargs, so the clock does not start again.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


def error_event(message: str, **details: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, **details}


class PollingTrigger(BaseTrigger):
    """Poll until ``_wait`` returns an event; any exception becomes an error event."""

    def __init__(self, *, timeout_seconds: float, poll_interval: float, started_at: float | None) -> None:
        super().__init__()
        self.timeout_seconds = float(timeout_seconds)
        self.poll_interval = float(poll_interval)
        self.started_at = time.time() if started_at is None else float(started_at)
        self._last_logged: dict[str, Any] = {}

    # clock ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.time() - self.started_at

    def expired(self) -> bool:
        return self.elapsed() >= self.timeout_seconds

    async def pause(self) -> None:
        """Wait a full interval between polls, never less (the SDK itself honours Retry-After)."""
        await asyncio.sleep(self.poll_interval)

    def log_if_changed(self, key: str, value: Any, message: str, *args: Any) -> None:
        """Log ``message`` only when ``value`` for ``key`` differs from what was logged last."""
        if key in self._last_logged and self._last_logged[key] == value:
            return
        self._last_logged[key] = value
        self.log.info(message, *args)

    # trigger protocol -----------------------------------------------------------------
    @abstractmethod
    def kwargs(self) -> dict[str, Any]:
        """The constructor's arguments, primitives only (what ``serialize`` stores)."""

    @abstractmethod
    async def _wait(self) -> dict[str, Any]:
        """Poll until done; return the event payload."""

    @abstractmethod
    def describe(self) -> str:
        """What is being waited for, for error messages."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", self.kwargs()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            event = await self._wait()
        except Exception as exc:  # the task decides what to do with any failure: it gets an event
            event = error_event(f"Waiting for {self.describe()} failed: {type(exc).__name__}: {exc}")
        yield TriggerEvent(event)
