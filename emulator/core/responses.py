"""Response builders shared by the services: LRO answers, lists, common resource fields."""

from __future__ import annotations

from typing import Any

from emulator.core import lro
from emulator.core.errors import ArmError, InvalidParameter
from emulator.core.routing import ArmRequest, ArmResponse


def retry_after(req: ArmRequest) -> str:
    value = req.ctx.store.get_setting("retry_after", 1)
    return str(value)


def async_headers(req: ArmRequest, op_id: str, provider: str, location: str, *, with_location: bool) -> dict[str, str]:
    path = lro.status_path(req.ctx, op_id, provider, location)
    headers = {"Azure-AsyncOperation": req.url(path), "Retry-After": retry_after(req)}
    if with_location:
        headers["Location"] = req.url(path, monitor="true")
    return headers


def lro_put(req: ArmRequest, body: dict[str, Any], op_id: str, provider: str, location: str, created: bool) -> ArmResponse:
    """PUT answer: 201 new / 200 existing with the resource and ``Azure-AsyncOperation`` (never 202)."""
    return ArmResponse(201 if created else 200, body, async_headers(req, op_id, provider, location, with_location=False))


def lro_action(req: ArmRequest, op_id: str, provider: str, location: str) -> ArmResponse:
    """POST action / DELETE answer: 202 with ``Azure-AsyncOperation`` and ``Location``."""
    return ArmResponse(202, None, async_headers(req, op_id, provider, location, with_location=True))


def listing(items: list[dict[str, Any]]) -> ArmResponse:
    return ArmResponse(200, {"value": items})


def operation_status(req: ArmRequest, op_id: str) -> ArmResponse:
    """GET of an operation-status resource; ``monitor=true`` is the ``Location`` form."""
    found = lro.status_body(req.ctx, op_id)
    if found is None:
        raise ArmError(f"The operation '{op_id}' was not found.", code="OperationNotFound", status=404)
    status, body = found
    in_progress = status not in lro.TERMINAL
    if req.query.get("monitor", "").lower() == "true":
        if in_progress:
            return ArmResponse(202, None, {"Retry-After": retry_after(req), "Location": req.url(req.path, monitor="true")})
        if status == "Failed":
            err = body.get("error") or {}
            raise ArmError(err.get("message", "Operation failed."), code=err.get("code", "OperationFailed"), status=400)
        out = lro.result(req.ctx, op_id)
        result = out[1] if out else None
        return ArmResponse(200, result) if result is not None else ArmResponse(200, None)
    headers = {"Retry-After": retry_after(req)} if in_progress else {}
    return ArmResponse(200, body, headers)


def operation_result(req: ArmRequest, op_id: str) -> ArmResponse:
    """ARM's ``operationresults`` (resource-group delete): 202 until done, then 200."""
    found = lro.status_body(req.ctx, op_id)
    if found is None:
        raise ArmError(f"The operation '{op_id}' was not found.", code="OperationNotFound", status=404)
    status, body = found
    if status not in lro.TERMINAL:
        return ArmResponse(202, None, {"Retry-After": retry_after(req), "Location": req.url(req.path)})
    if status == "Failed":
        err = body.get("error") or {}
        raise ArmError(err.get("message", "Operation failed."), code=err.get("code", "OperationFailed"), status=409)
    return ArmResponse(200, None)


def tags_of(body: dict[str, Any]) -> dict[str, str]:
    """Validate ARM tags: at most 50, names ≤ 512 chars, values ≤ 256, strings only."""
    tags = body.get("tags")
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidParameter("The value of parameter 'tags' is invalid.", target="tags")
    if len(tags) > 50:
        raise ArmError(
            "The number of tags exceeds the maximum of 50 allowed on a resource.", code="InvalidTag", target="tags"
        )
    for k, v in tags.items():
        if not isinstance(k, str) or len(k) > 512 or any(c in k for c in "<>%&\\?/"):
            raise ArmError(f"The tag name '{k}' is invalid.", code="InvalidTagNameCharacters", target="tags")
        if v is not None and (not isinstance(v, str) or len(v) > 256):
            raise ArmError(f"The tag value for '{k}' is invalid or longer than 256 characters.", code="InvalidTag", target="tags")
    return {k: v or "" for k, v in tags.items()}
