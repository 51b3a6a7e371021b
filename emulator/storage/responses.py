"""Operations API for the blob store: list, inspect and delete uploaded blobs (uploads: upload.py)."""

from __future__ import annotations

from emulator.core.errors import ArmError
from emulator.core.routing import ArmRequest, ArmResponse
from emulator.storage import blobs


def list_blobs(req: ArmRequest) -> ArmResponse:
    items = blobs.list_blobs(req.ctx)
    return ArmResponse(200, {"count": len(items), "value": items})


def get_blob(req: ArmRequest) -> ArmResponse:
    p = req.params
    return ArmResponse(200, blobs.properties(req.ctx, p["account"], p["container"], p["name"]))


def delete_blob(req: ArmRequest) -> ArmResponse:
    p = req.params
    if not blobs.delete(req.ctx, p["account"], p["container"], p["name"]):
        raise ArmError(f"The specified blob '{blobs.url_of(p['account'], p['container'], p['name'])}' does not exist.",
                       code="BlobNotFound", status=404)
    return ArmResponse(204)
