"""Microsoft.Network handlers: parse the request, call the model, shape the answer.

PUTs answer 201/200 with the resource (provisioningState Updating) and ``Azure-AsyncOperation``,
never 202 (the SDK rejects it); the operation settles the resource to Succeeded. DELETEs answer
202 with ``Azure-AsyncOperation`` + ``Location`` and the resource goes when the operation settles;
deleting something that is not there answers 204.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.core import lro
from emulator.core.responses import listing, lro_action, lro_put
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.core.store import Resource
from emulator.services.network import models
from emulator.services.network.models import DELETE_SECONDS, NIC, NSG, PIP, PUT_SECONDS, RULE, SUBNET, VNET

PROVIDER = "network"


def _begin(req: ArmRequest, resource: Resource, location: str, rtype: str, *, delete: bool) -> str:
    seconds = (DELETE_SECONDS if delete else PUT_SECONDS)[rtype]
    return lro.start_for(
        req, provider=PROVIDER, location=location, handler=models.DELETE_DONE if delete else models.PUT_DONE,
        args={"id": resource.id, "token": resource.internal["pending"]}, delay=req.ctx.duration(seconds),
    )


def _put_answer(req: ArmRequest, resource: Resource, created: bool, location: str, rtype: str) -> ArmResponse:
    op_id = _begin(req, resource, location, rtype, delete=False)
    return lro_put(req, resource.body, op_id, PROVIDER, location, created)


def _delete_answer(req: ArmRequest, resource: Resource | None, location: str | None, rtype: str) -> ArmResponse:
    if resource is None or not location:
        return ArmResponse(204)
    op_id = _begin(req, resource, location, rtype, delete=True)
    return lro_action(req, op_id, PROVIDER, location)


# top-level resources: one set of handlers per type --------------------------------------------
_PUTS: dict[str, Callable[..., tuple[Resource, bool]]] = {
    VNET: models.put_vnet, NSG: models.put_nsg, PIP: models.put_public_ip, NIC: models.put_nic,
}
_DELETES: dict[str, Callable[..., Resource | None]] = {
    VNET: models.begin_delete_vnet, NSG: models.begin_delete_nsg, PIP: models.begin_delete_public_ip,
    NIC: models.begin_delete_nic,
}


def put(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        resource, created = _PUTS[rtype](req.ctx, req.params["group"], req.params["name"], req.json())
        return _put_answer(req, resource, created, str(resource.body["location"]), rtype)

    return handler


def get(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        return ArmResponse(200, models.get(req.ctx, req.params["group"], rtype, req.params["name"]).body)

    return handler


def patch(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        return ArmResponse(200, models.update_tags(req.ctx, req.params["group"], rtype, req.params["name"], req.json()).body)

    return handler


def delete(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        resource = _DELETES[rtype](req.ctx, req.params["group"], req.params["name"])
        location = None if resource is None else str(resource.body["location"])
        return _delete_answer(req, resource, location, rtype)

    return handler


def list_group(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        return listing([r.body for r in models.list_all(req.ctx, rtype, req.params["group"])])

    return handler


def list_subscription(rtype: str) -> Callable[[ArmRequest], ArmResponse]:
    def handler(req: ArmRequest) -> ArmResponse:
        return listing([r.body for r in models.list_all(req.ctx, rtype)])

    return handler


# subnets ----------------------------------------------------------------------------------------
def put_subnet(req: ArmRequest) -> ArmResponse:
    p = req.params
    subnet, created, location = models.put_subnet(req.ctx, p["group"], p["vnet"], p["name"], req.json())
    return _put_answer(req, subnet, created, location, SUBNET)


def get_subnet(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, models.get_subnet(req.ctx, p["group"], p["vnet"], p["name"]).body)


def list_subnets(req: ArmRequest) -> ArmResponse:
    return listing([s.body for s in models.list_subnets(req.ctx, req.params["group"], req.params["vnet"])])


def delete_subnet(req: ArmRequest) -> ArmResponse:
    p = req.params
    subnet, location = models.begin_delete_subnet(req.ctx, p["group"], p["vnet"], p["name"])
    return _delete_answer(req, subnet, location, SUBNET)


# security rules -----------------------------------------------------------------------------------
def put_rule(req: ArmRequest) -> ArmResponse:
    p = req.params
    rule, created, location = models.put_rule(req.ctx, p["group"], p["nsg"], p["name"], req.json())
    return _put_answer(req, rule, created, location, RULE)


def get_rule(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, models.get_rule(req.ctx, p["group"], p["nsg"], p["name"]).body)


def list_rules(req: ArmRequest) -> ArmResponse:
    return listing([r.body for r in models.list_rules(req.ctx, req.params["group"], req.params["nsg"])])


def delete_rule(req: ArmRequest) -> ArmResponse:
    p = req.params
    rule, location = models.begin_delete_rule(req.ctx, p["group"], p["nsg"], p["name"])
    return _delete_answer(req, rule, location, RULE)


def get_default_rule(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, models.get_default_rule(req.ctx, p["group"], p["nsg"], p["name"]))


def list_default_rules(req: ArmRequest) -> ArmResponse:
    nsg = models.get(req.ctx, req.params["group"], NSG, req.params["nsg"])
    rules: list[dict[str, Any]] = list(nsg.properties.get("defaultSecurityRules") or [])
    return listing(rules)


# NIC ip configurations (read-only views) -----------------------------------------------------------
def get_ip_configuration(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, models.get_ip_configuration(req.ctx, p["group"], p["nic"], p["name"]))


def list_ip_configurations(req: ArmRequest) -> ArmResponse:
    nic = models.get(req.ctx, req.params["group"], NIC, req.params["nic"])
    return listing(list(nic.properties.get("ipConfigurations") or []))
