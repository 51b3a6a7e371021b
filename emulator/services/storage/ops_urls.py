"""Operations API of the storage service: ``GET /_emulator/storage`` (Azurite's PID, port and accounts)."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.services.storage import responses as r

router = Router()
router.add("GET", "/_emulator/storage", "emulator/storage")(r.azurite_status)
