"""Microsoft.Authorization handlers: parse the request, call the model, shape the answer.

Locks and role assignments are answered synchronously (200/201), as ARM does.
"""

from __future__ import annotations

from typing import Any

from emulator.core import auth
from emulator.core.responses import listing
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.services.authorization import models


def _claims(req: ArmRequest) -> dict[str, Any]:
    """Who is calling (the dispatcher has already verified the token): for createdBy fields."""
    return auth.verify(req.ctx, req.headers.get("authorization"))


def _scope(req: ArmRequest) -> str:
    return req.params.get("scope", "").rstrip("/")


# locks ---------------------------------------------------------------------------------------
def put_lock(req: ArmRequest) -> ArmResponse:
    lock, created = models.put_lock(req.ctx, _scope(req), req.params["name"], req.json(), _claims(req))
    return ArmResponse(201 if created else 200, lock.body)


def get_lock(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.get_lock(req.ctx, _scope(req), req.params["name"]).body)


def delete_lock(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200 if models.delete_lock(req.ctx, _scope(req), req.params["name"]) else 204)


def list_locks(req: ArmRequest) -> ArmResponse:
    return listing([lock.body for lock in models.list_locks(req.ctx, _scope(req), req.query.get("$filter"))])


# role definitions ----------------------------------------------------------------------------
def get_role_definition(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.get_role_definition(req.ctx, _scope(req), req.params["name"]))


def list_role_definitions(req: ArmRequest) -> ArmResponse:
    return listing(models.list_role_definitions(req.ctx, _scope(req), req.query.get("$filter")))


# role assignments ----------------------------------------------------------------------------
def put_role_assignment(req: ArmRequest) -> ArmResponse:
    item, created = models.put_assignment(req.ctx, _scope(req), req.params["name"], req.json(), _claims(req))
    return ArmResponse(201 if created else 200, item.body)


def get_role_assignment(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.get_assignment(req.ctx, _scope(req), req.params["name"]).body)


def delete_role_assignment(req: ArmRequest) -> ArmResponse:
    gone = models.delete_assignment(req.ctx, _scope(req), req.params["name"])
    return ArmResponse(200, gone.body) if gone is not None else ArmResponse(204)


def list_role_assignments(req: ArmRequest) -> ArmResponse:
    items = models.list_assignments(req.ctx, _scope(req), req.query.get("$filter"))
    return listing([item.body for item in items])
