"""What every factory task shares: retry only transient failures, and say clearly what went wrong."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from image_factory.errors import describe_arm_error, is_transient
from image_factory.plan import PlanError

DEFAULT_CONN_ID = "image_factory_azure"


@contextlib.contextmanager
def retry_only_transient(step: str) -> Iterator[None]:
    """Re-raise transient errors (Airflow retries them); turn every other error into a final failure."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except AirflowFailException:
        raise
    except Exception as exc:
        if is_transient(exc):
            raise
        detail = describe_arm_error(exc) if hasattr(exc, "error") else str(exc)
        kind = "invalid input" if isinstance(exc, (PlanError, ValueError)) else type(exc).__name__
        raise AirflowFailException(f"{step} failed ({kind}, not retried): {detail}") from exc


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
