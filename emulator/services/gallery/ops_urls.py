"""Operations API of the gallery service: replication faults (``/_emulator/replication/faults``)."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.services.gallery import responses as r

router = Router()
P = "/_emulator/replication/faults"
router.add("GET", P, "emulator/replication/faults")(r.list_replication_faults)
router.add("POST", P, "emulator/replication/faults/add")(r.add_replication_fault)
router.add("DELETE", P, "emulator/replication/faults/clear")(r.clear_replication_faults)
