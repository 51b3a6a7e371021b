"""Microsoft.Resources handlers: parse the request, call the model, shape the answer."""

from __future__ import annotations

from typing import Any

from emulator.core.errors import ArmError
from emulator.core.responses import listing, operation_result, operation_status, retry_after, tags_of
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.services.resources import models


def _subscription(req: ArmRequest) -> dict[str, Any]:
    ctx = req.ctx
    return {
        "id": f"/subscriptions/{ctx.subscription}",
        "subscriptionId": ctx.subscription,
        "tenantId": ctx.tenant,
        "displayName": "Local Azure",
        "state": "Enabled",
        "managedByTenants": [],
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
        "authorizationSource": "RoleBased",
    }


def list_subscriptions(req: ArmRequest) -> ArmResponse:
    return listing([_subscription(req)])


def get_subscription(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, _subscription(req))


def list_tenants(req: ArmRequest) -> ArmResponse:
    return listing([{"id": f"/tenants/{req.ctx.tenant}", "tenantId": req.ctx.tenant, "tenantCategory": "Home",
                     "displayName": "Local Azure"}])


def put_group(req: ArmRequest) -> ArmResponse:
    body = req.json()
    group, created = models.put_group(req.ctx, req.params["group"], body, tags_of(body))
    return ArmResponse(201 if created else 200, group.body)


def get_group(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, models.get_group(req.ctx, req.params["group"]).body)


def head_group(req: ArmRequest) -> ArmResponse:
    try:
        models.get_group(req.ctx, req.params["group"])
    except ArmError:
        return ArmResponse(404)
    return ArmResponse(204)


def patch_group(req: ArmRequest) -> ArmResponse:
    body = req.json()
    tags = tags_of(body) if "tags" in body else None
    return ArmResponse(200, models.patch_group(req.ctx, req.params["group"], tags).body)


def delete_group(req: ArmRequest) -> ArmResponse:
    try:
        models.get_group(req.ctx, req.params["group"])
    except ArmError:
        return ArmResponse(204)  # ARM: deleting a group that is not there is a no-op
    op_id = models.begin_delete_group(req.ctx, req.params["group"], req.lro_failure)
    path = f"/subscriptions/{req.ctx.subscription}/operationresults/{op_id}"
    return ArmResponse(202, None, {"Location": req.url(path), "Retry-After": retry_after(req)})


def list_groups(req: ArmRequest) -> ArmResponse:
    flt = req.query.get("$filter")
    return listing([g.body for g in models.list_groups(req.ctx) if models.matches_filter(g, flt)])


def list_group_resources(req: ArmRequest) -> ArmResponse:
    flt = req.query.get("$filter")
    items = models.group_resources(req.ctx, req.params["group"])
    return listing([_generic(r.body) for r in items if models.matches_filter(r, flt)])


def list_subscription_resources(req: ArmRequest) -> ArmResponse:
    flt = req.query.get("$filter")
    return listing([_generic(r.body) for r in models.subscription_resources(req.ctx) if models.matches_filter(r, flt)])


def _generic(body: dict[str, Any]) -> dict[str, Any]:
    """The GenericResource shape: no properties unless expanded."""
    return {k: body[k] for k in ("id", "name", "type", "location", "tags", "kind", "managedBy", "sku") if k in body}


def operation(req: ArmRequest) -> ArmResponse:
    return operation_status(req, req.params["operation"])


def operation_results(req: ArmRequest) -> ArmResponse:
    return operation_result(req, req.params["operation"])
