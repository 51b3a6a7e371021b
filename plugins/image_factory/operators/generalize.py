"""The generalize step: one command for Linux and specialized images; for a generalized Windows image,
sysprep started and then watched through ImageState with the task deferred between looks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context

from image_factory import sysprep
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient

STEP = "generalize"


class GeneralizeOperator(BaseOperator):
    """Deprovision or shut down the build VM; a Windows sysprep runs for minutes without holding a worker slot.

    Between two reads of ImageState the task defers on Airflow's own time trigger: nothing about the
    guest goes into the trigger, and the deferral carries only when sysprep started and how many
    looks it took (the WinRM password is derived again from the run on each resume). A retried try
    reads ImageState before anything else, so sysprep never starts twice.
    """

    template_fields: Sequence[str] = ("plan", "ready")

    def __init__(self, *, plan: Any, ready: Any, azure_conn_id: str = DEFAULT_CONN_ID,
                 timeout_seconds: float = sysprep.TIMEOUT_SECONDS, first_poll: float = sysprep.FIRST_POLL_SECONDS,
                 longest_poll: float = sysprep.LONGEST_POLL_SECONDS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan, self.ready, self.azure_conn_id = plan, ready, azure_conn_id
        self.timeout_seconds, self.first_poll, self.longest_poll = timeout_seconds, first_poll, longest_poll

    def _build(self) -> Any:
        from image_factory.pipeline.build import Build

        return Build.from_task(self.plan, self.azure_conn_id)

    def execute(self, context: Context) -> dict[str, Any] | None:
        from image_factory.pipeline import steps

        with retry_only_transient(STEP):
            b = self._build()
            if not steps.needs_sysprep(b):
                return steps.generalize_guest(b, self.ready)
            started_at = time.time()
            started, state = steps.sysprep_start(b, self.ready)
        if not started:
            self.log.info("ImageState is %s: an earlier try already ran sysprep; not starting it again", state)
        return self._after_look(b, state, started_at, polls=0)

    def execute_complete(self, context: Context, event: Any = None, started_at: float | None = None,
                         polls: int = 0) -> dict[str, Any] | None:
        """The wait is over: read ImageState again, then shut down or defer once more."""
        from image_factory.pipeline import steps

        if started_at is None:  # dag.test() in Airflow 3.3.2 drops a deferral's kwargs (apache/airflow#69942)
            self.log.warning("The deferral's start time did not come back; the sysprep deadline counts from now")
            started_at = time.time()
        with retry_only_transient(STEP):
            b = self._build()
            state = steps.sysprep_state(b, self.ready)
        return self._after_look(b, state, float(started_at), polls=int(polls))

    def _after_look(self, b: Any, state: str, started_at: float, *, polls: int) -> dict[str, Any] | None:
        from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

        from image_factory.pipeline import steps

        elapsed = time.time() - started_at
        with retry_only_transient(STEP):
            if sysprep.done(state):
                self.log.info("Sysprep finished after %.0f s (ImageState %s): shutting the guest down", elapsed, state)
                steps.sysprep_shutdown(b, self.ready)
                return {"mode": "sysprep", "image_state": state, "seconds": round(time.time() - started_at, 3)}
            delay = sysprep.next_poll(state, elapsed=elapsed, polls=polls, timeout=self.timeout_seconds,
                                      first=self.first_poll, longest=self.longest_poll)
        self.log.info("Sysprep is still generalizing (ImageState %s, %.0f s so far): deferring, next look in %.0f s",
                      state, elapsed, delay)
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=delay)), method_name="execute_complete",
                   kwargs={"started_at": started_at, "polls": polls + 1})
