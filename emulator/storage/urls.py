"""Routes of the blob store's operations API (the streamed PUT lives in upload.py)."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.storage import responses as r

router = Router()
BLOB = r"/_emulator/blobs/(?P<account>[^/]+)/(?P<container>[^/]+)/(?P<name>.+)"
router.add("GET", r"/_emulator/blobs", "emulator/blobs/list")(r.list_blobs)
router.add("GET", BLOB, "emulator/blobs/read")(r.get_blob)
router.add("DELETE", BLOB, "emulator/blobs/delete")(r.delete_blob)
