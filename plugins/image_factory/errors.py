"""Which failures are worth a retry, and ARM's nested error envelope in one readable line (pure).

A task retries only what can heal by itself: throttling, server errors, timeouts and dropped
connections. Bad input, a failing guest script or a 4xx from ARM fail at once, so a user is not
left waiting through retries that cannot succeed. A VM refused by the vCPU quota is neither: it
waits for vCPUs to free up (``quota_exceeded``; the operators reschedule such a task).
"""

from __future__ import annotations

import re
import socket
from typing import Any

TRANSIENT_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
# 409 is transient only for ARM's "operation in progress" family: another write still holds the resource.
TRANSIENT_409_CODES = frozenset({"OperationNotAllowed", "Conflict", "AnotherOperationInProgress",
                                 "OperationPreempted", "RetryableError"})


class PermanentError(Exception):
    """A failure a retry cannot fix (the message says what to change)."""


class GuestScriptError(PermanentError):
    """A guest script failed: its name, exit code and the tail of its output, without opening the guest."""

    def __init__(self, script: str, exit_code: int | None, tail: str, reason: str | None = None) -> None:
        self.script, self.exit_code, self.tail = script, exit_code, tail
        what = reason or f"exited with code {exit_code}"
        super().__init__(f"guest script {script!r} {what}; last lines of its output:\n{tail}")


class SmokeTestError(PermanentError):
    """A smoke check failed in one or more regions: the version is not promoted."""


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _code(exc: BaseException) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", "") or "")


def is_transient(exc: BaseException) -> bool:
    """True when the same call may well succeed if simply tried again later."""
    if isinstance(exc, PermanentError):
        return False
    name = type(exc).__name__
    if name in {"ServiceRequestError", "ServiceResponseError", "ServiceRequestTimeoutError",
                "ServiceResponseTimeoutError", "SSHException", "NoValidConnectionsError",
                "WinRMTransportError", "ReadTimeout", "ConnectTimeout", "ConnectionError"}:
        return True
    if isinstance(exc, (ConnectionError, TimeoutError, socket.timeout, EOFError)):
        return True
    status = _status(exc)
    if status is None:
        return False
    if status == 409:
        return _code(exc) in TRANSIENT_409_CODES
    return status in TRANSIENT_STATUS


_QUOTA = re.compile(r"exceeding approved (?P<quota>.+?)(?: Cores)? quota\. Additional details - .*?"
                    r"Location: (?P<location>[\w-]+), Current Limit: (?P<limit>\d+), "
                    r"Current Usage: (?P<usage>\d+), Additional Required: (?P<needed>\d+)")


def quota_exceeded(exc: BaseException) -> dict[str, Any] | None:
    """ARM's 409 for a VM that would exceed a vCPU quota: which quota, where, its limit, usage and shortfall.

    Not a failure of the build: the vCPUs come back when other VMs are deallocated or deleted.
    """
    if _status(exc) != 409 or _code(exc) != "OperationNotAllowed":
        return None
    message = str(getattr(getattr(exc, "error", None), "message", "") or exc)
    m = _QUOTA.search(message)
    if m is None:
        return None
    return {"quota": m["quota"], "location": m["location"], "limit": int(m["limit"]), "usage": int(m["usage"]),
            "needed": int(m["needed"])}


def describe_arm_error(exc: BaseException) -> str:
    """``Code: message (target) ← inner code: message …`` from an azure-core HttpResponseError."""
    error: Any = getattr(exc, "error", None)
    if error is None:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    parts: list[str] = []

    def walk(e: Any) -> None:
        text = f"{getattr(e, 'code', '') or 'Error'}: {getattr(e, 'message', '') or ''}".strip()
        target = getattr(e, "target", None)
        parts.append(f"{text} (target: {target})" if target else text)
        for inner in getattr(e, "details", None) or []:
            walk(inner)

    walk(error)
    status = _status(exc)
    return (f"HTTP {status} " if status else "") + " ← ".join(parts)
