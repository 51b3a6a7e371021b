"""One poll before deferring: an already-finished wait is reported at once, an unfinished one never sleeps."""

from __future__ import annotations

import time
from typing import Any

from image_factory.triggers.polling import PollingTrigger, error_event


class Countdown(PollingTrigger):
    """Succeeds on the ``ready_at``-th poll."""

    def __init__(self, ready_at: int, fail: bool = False) -> None:
        super().__init__(timeout_seconds=60, poll_interval=30, started_at=None)
        self.ready_at, self.fail, self.polls = ready_at, fail, 0

    def kwargs(self) -> dict[str, Any]:
        return {"ready_at": self.ready_at}

    def describe(self) -> str:
        return "a countdown"

    async def _wait(self) -> dict[str, Any]:
        while True:
            self.polls += 1
            if self.fail:
                return error_event("it broke")
            if self.polls >= self.ready_at:
                return {"status": "success", "polls": self.polls}
            await self.pause()


def test_a_finished_wait_is_reported_without_deferring() -> None:
    assert Countdown(ready_at=1).check_now() == {"status": "success", "polls": 1}


def test_an_unfinished_wait_returns_after_one_poll_without_sleeping() -> None:
    trigger = Countdown(ready_at=3)
    began = time.monotonic()
    assert trigger.check_now() is None
    assert trigger.polls == 1 and time.monotonic() - began < 5  # the 30 s poll interval was not slept
    assert not trigger._probing  # the real run() will sleep between polls again


def test_an_error_is_left_for_the_trigger_to_report() -> None:
    assert Countdown(ready_at=1, fail=True).check_now() is None


def test_the_trigger_settles_before_its_first_poll() -> None:
    import asyncio

    trigger = Countdown(ready_at=1)
    trigger.SETTLE_SECONDS = 0.3

    async def first() -> tuple[float, object]:
        began = time.monotonic()
        event = await trigger.run().__anext__()
        return time.monotonic() - began, event.payload

    waited, payload = asyncio.run(first())
    assert payload == {"status": "success", "polls": 1} and waited >= 0.3
