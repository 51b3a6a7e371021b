"""Microsoft.Compute handlers: parse the request, call the model, shape the answer."""

from __future__ import annotations

from typing import Any

from emulator.core.regions import canonical
from emulator.core.responses import listing, lro_action, lro_put, tags_of
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.services.compute import disks, images, instance_view, marketplace, models, power, quota, runcommand


def _flag(req: ArmRequest, name: str) -> bool:
    return req.query.get(name.lower(), "").lower() == "true"


def _expand(req: ArmRequest) -> str:
    return req.query.get("$expand", "").lower()


# virtual machines ---------------------------------------------------------------------------------
def put_vm(req: ArmRequest) -> ArmResponse:
    body = req.json()
    vm, created, op = models.put_vm(req.ctx, req.params["group"], req.params["vm"], body, tags_of(body),
                                    req.lro_failure)
    return lro_put(req, models.wire(vm), op, "compute", vm.body["location"], created)


def patch_vm(req: ArmRequest) -> ArmResponse:
    body = req.json()
    tags = tags_of(body) if "tags" in body else None
    vm, op = models.patch_vm(req.ctx, req.params["group"], req.params["vm"], body, tags, req.lro_failure)
    return lro_put(req, models.wire(vm), op, "compute", vm.body["location"], False)


def get_vm(req: ArmRequest) -> ArmResponse:
    vm = models.get_vm(req.ctx, req.params["group"], req.params["vm"])
    return ArmResponse(200, models.wire(vm, with_view=_expand(req) == "instanceview"))


def instance_view_of(req: ArmRequest) -> ArmResponse:
    vm = models.get_vm(req.ctx, req.params["group"], req.params["vm"])
    return ArmResponse(200, instance_view.build(vm))


def list_vms(req: ArmRequest) -> ArmResponse:
    found = models.list_vms(req.ctx, req.params["group"])
    return listing([models.wire(vm, with_view=_expand(req) == "instanceview") for vm in found])


def list_all_vms(req: ArmRequest) -> ArmResponse:
    with_view = _flag(req, "statusOnly") or _expand(req) == "instanceview"
    return listing([models.wire(vm, with_view=with_view) for vm in models.list_vms(req.ctx)])


def list_vms_by_location(req: ArmRequest) -> ArmResponse:
    found = models.list_vms(req.ctx, location=req.params["location"])
    return listing([models.wire(vm) for vm in found])


def list_usages(req: ArmRequest) -> ArmResponse:
    """The region's vCPU quotas and what the subscription uses of them (``usage.list``)."""
    return ArmResponse(200, {"value": quota.usage_list(req.ctx, req.params["location"])})


# quotas in the operations API (/_emulator/quotas): limits settable at runtime, usage and high-water marks
def list_quotas(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, {"value": [quota.view(req.ctx, region) for region in quota.regions_in_view(req.ctx)]})


def get_quota(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, quota.view(req.ctx, req.params["location"]))


def put_quota(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, quota.set_limits(req.ctx, req.params["location"], req.json()))


def reset_high_water(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, quota.reset_high_water(req.ctx, req.params["location"]))


def delete_vm(req: ArmRequest) -> ArmResponse:
    started = models.begin_delete(req.ctx, req.params["group"], req.params["vm"], req.lro_failure)
    if started is None:
        return ArmResponse(204)
    op, location = started
    return lro_action(req, op, "compute", location)


def _action(req: ArmRequest, action: str, **kw: Any) -> ArmResponse:
    op, location = power.begin_action(req.ctx, req.params["group"], req.params["vm"], action, req.lro_failure, **kw)
    return lro_action(req, op, "compute", location)


def start_vm(req: ArmRequest) -> ArmResponse:
    return _action(req, "start")


def power_off_vm(req: ArmRequest) -> ArmResponse:
    return _action(req, "powerOff", skip_shutdown=_flag(req, "skipShutdown"))


def deallocate_vm(req: ArmRequest) -> ArmResponse:
    return _action(req, "deallocate")


def restart_vm(req: ArmRequest) -> ArmResponse:
    return _action(req, "restart")


def generalize_vm(req: ArmRequest) -> ArmResponse:
    power.generalize(req.ctx, req.params["group"], req.params["vm"])
    return ArmResponse(200)


def run_command(req: ArmRequest) -> ArmResponse:
    op, location = runcommand.run_command(req.ctx, req.params["group"], req.params["vm"], req.json(), req.lro_failure)
    return lro_action(req, op, "compute", location)


# managed images ----------------------------------------------------------------------------------
def put_image(req: ArmRequest) -> ArmResponse:
    body = req.json()
    image, created, op = images.put_image(req.ctx, req.params["group"], req.params["image"], body, tags_of(body),
                                          req.lro_failure)
    return lro_put(req, image.body, op, "compute", image.body["location"], created)


def patch_image(req: ArmRequest) -> ArmResponse:
    body = req.json()
    tags = tags_of(body) if "tags" in body else None
    image, op = images.patch_image(req.ctx, req.params["group"], req.params["image"], tags)
    return lro_put(req, image.body, op, "compute", image.body["location"], False)


def get_image(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, images.get_image(req.ctx, req.params["group"], req.params["image"]).body)


def list_images(req: ArmRequest) -> ArmResponse:
    return listing([i.body for i in images.list_images(req.ctx, req.params.get("group"))])


def delete_image(req: ArmRequest) -> ArmResponse:
    started = images.begin_delete(req.ctx, req.params["group"], req.params["image"], req.lro_failure)
    if started is None:
        return ArmResponse(204)
    op, location = started
    return lro_action(req, op, "compute", location)


# managed disks -----------------------------------------------------------------------------------
def get_disk(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, disks.get_disk(req.ctx, req.params["group"], req.params["disk"]).body)


def list_disks(req: ArmRequest) -> ArmResponse:
    return listing([d.body for d in disks.list_disks(req.ctx, req.params.get("group"))])


def delete_disk(req: ArmRequest) -> ArmResponse:
    started = disks.begin_delete(req.ctx, req.params["group"], req.params["disk"], req.lro_failure)
    if started is None:
        return ArmResponse(204)
    op, location = started
    return lro_action(req, op, "compute", location)


# Marketplace -------------------------------------------------------------------------------------
def _location(req: ArmRequest) -> str:
    return canonical(req.params["location"])


def list_publishers(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, marketplace.publisher_items(req.ctx.subscription, _location(req)))


def list_offers(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, marketplace.offer_items(req.ctx.subscription, _location(req), req.params["publisher"]))


def list_skus(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, marketplace.sku_items(req.ctx.subscription, _location(req), p["publisher"], p["offer"]))


def list_versions(req: ArmRequest) -> ArmResponse:
    p = req.params
    top = req.query.get("$top")
    items = marketplace.version_items(
        req.ctx.subscription, _location(req), p["publisher"], p["offer"], p["sku"],
        top=int(top) if top and top.isdigit() else None, orderby=req.query.get("$orderby"),
        expand=_expand(req) == "properties",
    )
    return ArmResponse(200, items)


def get_version(req: ArmRequest) -> ArmResponse:
    p = req.params
    body = marketplace.get_version(req.ctx.subscription, _location(req), p["publisher"], p["offer"], p["sku"],
                                   p["version"])
    return ArmResponse(200, body)
