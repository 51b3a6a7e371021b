"""Only failures that can heal by themselves are retried; ARM's error envelope reads as one line."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.core.rest import HttpRequest

from image_factory.errors import GuestScriptError, SmokeTestError, describe_arm_error, is_transient
from image_factory.plan import PlanError


class FakeResponse:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code, self.reason, self.headers = status, "x", {"content-type": "application/json"}
        self.request = HttpRequest("PUT", "https://management.azure.com/x")
        self._body = body

    def text(self, encoding: str | None = None) -> str:
        return self._body.decode()

    def body(self) -> bytes:
        return self._body


def arm_error(status: int, code: str, message: str = "m", details: str = "") -> HttpResponseError:
    inner = f', "details": [{{"code": "Inner", "message": "{details}"}}]' if details else ""
    body = f'{{"error": {{"code": "{code}", "message": "{message}", "target": "properties.x"{inner}}}}}'
    return HttpResponseError(response=FakeResponse(status, body.encode()))  # type: ignore[arg-type]


@pytest.mark.parametrize(("exc", "transient"), [
    (arm_error(429, "TooManyRequests"), True),
    (arm_error(503, "ServiceUnavailable"), True),
    (arm_error(500, "InternalServerError"), True),
    (arm_error(409, "AnotherOperationInProgress"), True),
    (arm_error(409, "ImageDefinitionConflict"), False),
    (arm_error(400, "InvalidParameter"), False),
    (arm_error(404, "ResourceNotFound"), False),
    (arm_error(403, "AuthorizationFailed"), False),
    (ServiceRequestError("connection refused"), True),
    (ConnectionResetError(), True),
    (TimeoutError(), True),
    (GuestScriptError("linux/x.sh", 7, "tail"), False),
    (SmokeTestError("failed"), False),
    (PlanError("params.regions: unknown"), False),
    (ValueError("bad"), False),
])
def test_transient_classification(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_arm_errors_read_as_one_line_with_code_target_and_details() -> None:
    text = describe_arm_error(arm_error(400, "InvalidParameter", "The value is invalid.", details="deeper cause"))
    assert text == ("HTTP 400 InvalidParameter: The value is invalid. (target: properties.x) ← Inner: deeper cause")
    assert describe_arm_error(ValueError("plain\nsecond line")) == "plain"
