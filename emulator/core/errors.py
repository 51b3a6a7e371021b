"""Typed ARM errors. Models raise these; one place (the dispatcher) turns them into ARM's envelope."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An error ARM would return: HTTP status, error code, message and optional target."""

    status = 400
    code = "BadRequest"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        target: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.target = target
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(ArmError):
    status, code = 400, "BadRequest"


class InvalidParameter(ArmError):
    status, code = 400, "InvalidParameter"


class InvalidResourceName(ArmError):
    status, code = 400, "InvalidResourceName"


class NotFound(ArmError):
    status, code = 404, "ResourceNotFound"


class Conflict(ArmError):
    status, code = 409, "Conflict"


class OperationNotAllowed(ArmError):
    status, code = 409, "OperationNotAllowed"


class Unauthorized(ArmError):
    status, code = 401, "AuthenticationFailed"


class Throttled(ArmError):
    status, code = 429, "SubscriptionRequestsThrottled"


def resource_not_found(resource_type: str, name: str, group: str) -> NotFound:
    """ARM's wording for a missing resource inside an existing group."""
    return NotFound(
        f"The Resource '{resource_type}/{name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )


def group_not_found(group: str) -> NotFound:
    return NotFound(f"Resource group '{group}' could not be found.", code="ResourceGroupNotFound")


def parent_not_found(parent_id: str) -> NotFound:
    return NotFound(
        f"Can not perform requested operation on nested resource. Parent resource '{parent_id}' not found.",
        code="ParentResourceNotFound",
    )
