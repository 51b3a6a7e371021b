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


class _NotYet(Exception):
    """Raised by ``pause`` during ``check_once``: the first poll did not end the wait."""


class PollingTrigger(BaseTrigger):
    """Poll until ``_wait`` returns an event; any exception becomes an error event."""

    SETTLE_SECONDS = 5.0

    def __init__(self, *, timeout_seconds: float, poll_interval: float, started_at: float | None) -> None:
        super().__init__()
        self.timeout_seconds = float(timeout_seconds)
        self.poll_interval = float(poll_interval)
        self.started_at = time.time() if started_at is None else float(started_at)
        self._last_logged: dict[str, Any] = {}
        self._probing = False

    # clock ---------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.time() - self.started_at

    def expired(self) -> bool:
        return self.elapsed() >= self.timeout_seconds

    async def pause(self) -> None:
        """Wait a full interval between polls, never less (the SDK itself honours Retry-After)."""
        if self._probing:
            raise _NotYet
        await asyncio.sleep(self.poll_interval)

    async def check_once(self) -> dict[str, Any] | None:
        """Poll once, now: the success event if the wait is already over, else None.

        Operators call this before deferring. A wait that is already over (the VM booted while
        its create call ran) then completes in the task, which is faster, and avoids deferring to
        a trigger that fires at once: Airflow 3.3 can mishandle an event that arrives within
        moments of the deferral (apache/airflow#72716) and fail the resumed try.
        """
        self._probing = True
        try:
            event = await self._wait()
        except Exception:  # not over yet, or not decidable in one poll: the trigger will tell
            return None
        finally:
            self._probing = False
        return event if event.get("status") == "success" else None

    def check_now(self) -> dict[str, Any] | None:
        """``check_once`` from synchronous code (an operator's ``execute``)."""
        return asyncio.run(self.check_once())

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
        # The task polled once just before deferring. Waiting a little before the first poll here
        # also keeps an event from reaching the scheduler before the task's own report that it
        # deferred, which Airflow 3.3 can mishandle (apache/airflow#71580, #72716).
        await asyncio.sleep(min(self.SETTLE_SECONDS, max(self.timeout_seconds - self.elapsed(), 0.0)))
        try:
            event = await self._wait()
        except Exception as exc:  # the task decides what to do with any failure: it gets an event
            event = error_event(f"Waiting for {self.describe()} failed: {type(exc).__name__}: {exc}")
        yield TriggerEvent(event)
