"""What every factory task shares: retry only transient failures, wait out a full vCPU quota, and say
clearly what went wrong."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from image_factory.errors import describe_arm_error, is_transient, quota_exceeded
from image_factory.plan import PlanError

DEFAULT_CONN_ID = "image_factory_azure"


@contextlib.contextmanager
def retry_only_transient(step: str) -> Iterator[None]:
    """Re-raise transient errors (Airflow retries them), wait out a full vCPU quota; anything else fails for good."""
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    try:
        yield
    except (AirflowFailException, AirflowRescheduleException):
        raise
    except Exception as exc:
        shortfall = quota_exceeded(exc)
        if shortfall is not None:
            raise wait_for_quota(step, shortfall) from exc
        if is_transient(exc):
            raise
        detail = describe_arm_error(exc) if hasattr(exc, "error") else str(exc)
        kind = "invalid input" if isinstance(exc, (PlanError, ValueError)) else type(exc).__name__
        raise AirflowFailException(f"{step} failed ({kind}, not retried): {detail}") from exc


def wait_for_quota(step: str, shortfall: dict[str, Any]) -> Exception:
    """Queue, not fail: reschedule the task (no retry used, no pool slot held) until vCPUs free up.

    Pools keep the factory within the quota nearly always; this covers the rest (a VM between two of
    its tasks, another workload in the subscription). After fleet.yaml's ``quota_wait.max_minutes``
    the task fails, saying which quota to raise.
    """
    import logging
    from datetime import UTC, datetime, timedelta

    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException

    from image_factory import fleet
    from image_factory.pipeline.build import include_dir

    waits = int(get_current_context().get("task_reschedule_count") or 0)
    delay = fleet.quota_wait(fleet.load(include_dir()), waits)
    what = (f"the {shortfall['quota']} vCPU quota in {shortfall['location']} (limit {shortfall['limit']}, "
            f"in use {shortfall['usage']}, this VM needs {shortfall['needed']})")
    if delay is None:
        return AirflowFailException(f"{step}: still over {what} after waiting {waits} times; raise the quota or "
                                    "lower the region's vcpus pool in include/fleet.yaml")
    logging.getLogger(__name__).warning("%s: over %s; waiting %.0f s for vCPUs to free up (wait %d), holding no "
                                        "pool slot", step, what, delay, waits + 1)
    return AirflowRescheduleException(datetime.now(UTC) + timedelta(seconds=delay))


def event_or_fail(step: str, event: dict[str, Any] | None) -> dict[str, Any]:
    """A trigger's event, or a final failure carrying the trigger's message."""
    from airflow.sdk.exceptions import AirflowFailException

    if not event:
        raise AirflowFailException(f"{step}: the trigger ended without an event")
    if event.get("status") != "success":
        raise AirflowFailException(f"{step}: {event.get('message', event)}")
    return event


def defer_unless_done(operator: Any, trigger: Any, method_name: str, context: Any) -> Any:
    """Defer to ``trigger`` unless one poll shows the wait is already over; then complete right here."""
    event = trigger.check_now()
    if event is not None:
        return getattr(operator, method_name)(context, event=event)
    operator.defer(trigger=trigger, method_name=method_name)
    return None
