"""Azure Compute Gallery handlers: parse the request, call the model, shape the answer."""

from __future__ import annotations

from emulator.core.responses import async_headers, listing, lro_action, lro_put, tags_of
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.core.store import Resource
from emulator.services.gallery import common, faults, models, versions
from emulator.services.gallery.common import PROVIDER


def _patched(req: ArmRequest, resource: Resource, op_id: str, body: object) -> ArmResponse:
    """PATCH answer: 200 only, provisioningState Updating, ``Azure-AsyncOperation`` to poll."""
    headers = async_headers(req, op_id, PROVIDER, resource.body["location"], with_location=False)
    return ArmResponse(200, body, headers)


def _deleting(req: ArmRequest, found: tuple[Resource, str] | None) -> ArmResponse:
    if found is None:
        return ArmResponse(204)  # ARM: deleting what is not there is a no-op
    resource, op_id = found
    return lro_action(req, op_id, PROVIDER, resource.body["location"])


def _tags_if_given(body: dict[str, object]) -> dict[str, str] | None:
    return tags_of(body) if "tags" in body else None  # type: ignore[arg-type]


# galleries ---------------------------------------------------------------------------------------
def put_gallery(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, created, op_id = models.put_gallery(req.ctx, p["group"], p["gallery"], body, tags_of(body), req.lro_failure)
    return lro_put(req, resource.body, op_id, PROVIDER, resource.body["location"], created)


def get_gallery(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, common.get(req.ctx, p["group"], p["gallery"]).body)


def patch_gallery(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, op_id = models.patch_gallery(req.ctx, p["group"], p["gallery"], body, _tags_if_given(body),
                                           req.lro_failure)
    return _patched(req, resource, op_id, resource.body)


def delete_gallery(req: ArmRequest) -> ArmResponse:
    p = req.params
    return _deleting(req, models.begin_delete_gallery(req.ctx, p["group"], p["gallery"], req.lro_failure))


def list_galleries_in_group(req: ArmRequest) -> ArmResponse:
    return listing([g.body for g in models.list_galleries(req.ctx, req.params["group"])])


def list_galleries(req: ArmRequest) -> ArmResponse:
    return listing([g.body for g in models.list_galleries(req.ctx, None)])


# image definitions -------------------------------------------------------------------------------
def put_definition(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, created, op_id = models.put_definition(req.ctx, p["group"], p["gallery"], p["image"], body,
                                                     tags_of(body), req.lro_failure)
    return lro_put(req, resource.body, op_id, PROVIDER, resource.body["location"], created)


def get_definition(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, common.get(req.ctx, p["group"], p["gallery"], p["image"]).body)


def patch_definition(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, op_id = models.patch_definition(req.ctx, p["group"], p["gallery"], p["image"], body,
                                              _tags_if_given(body), req.lro_failure)
    return _patched(req, resource, op_id, resource.body)


def delete_definition(req: ArmRequest) -> ArmResponse:
    p = req.params
    return _deleting(req, models.begin_delete_definition(req.ctx, p["group"], p["gallery"], p["image"],
                                                         req.lro_failure))


def list_definitions(req: ArmRequest) -> ArmResponse:
    p = req.params
    return listing([d.body for d in models.list_definitions(req.ctx, p["group"], p["gallery"])])


# image versions ----------------------------------------------------------------------------------
def put_version(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, created, op_id = versions.put_version(req.ctx, p["group"], p["gallery"], p["image"], p["version"], body,
                                                    tags_of(body), req.lro_failure)
    return lro_put(req, versions.render(req.ctx, resource), op_id, PROVIDER, resource.body["location"], created)


def get_version(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, versions.get_version(req.ctx, p["group"], p["gallery"], p["image"], p["version"],
                                                 expand=req.query.get("$expand")))


def patch_version(req: ArmRequest) -> ArmResponse:
    body = req.json()
    p = req.params
    resource, op_id = versions.patch_version(req.ctx, p["group"], p["gallery"], p["image"], p["version"], body,
                                             _tags_if_given(body), req.lro_failure)
    return _patched(req, resource, op_id, versions.render(req.ctx, resource))


def delete_version(req: ArmRequest) -> ArmResponse:
    p = req.params
    return _deleting(req, versions.begin_delete_version(req.ctx, p["group"], p["gallery"], p["image"], p["version"],
                                                        req.lro_failure))


def list_versions(req: ArmRequest) -> ArmResponse:
    p = req.params
    return listing([versions.render(req.ctx, v) for v in versions.list_versions(req.ctx, p["group"], p["gallery"],
                                                                                p["image"])])


# operations API: replication faults --------------------------------------------------------------
def list_replication_faults(req: ArmRequest) -> ArmResponse:
    return ArmResponse(200, {"value": faults.rules(req.ctx)})


def add_replication_fault(req: ArmRequest) -> ArmResponse:
    return ArmResponse(201, faults.add(req.ctx, req.json()))


def clear_replication_faults(req: ArmRequest) -> ArmResponse:
    faults.clear(req.ctx)
    return ArmResponse(204)
