"""Routes of the operations API, outside ARM's namespace and authentication."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.ops import responses as r

router = Router()
P = "/_emulator"
router.add("GET", P + "/health", "emulator/health")(r.health)
router.add("GET", P + "/inventory", "emulator/inventory")(r.inventory)
router.add("GET", P + "/requests", "emulator/requests")(r.requests)
router.add("DELETE", P + "/requests", "emulator/requests/clear")(r.clear_requests)
router.add("POST", P + "/reset", "emulator/reset")(r.reset)
router.add("GET", P + "/faults", "emulator/faults")(r.list_faults)
router.add("POST", P + "/faults", "emulator/faults/add")(r.add_fault)
router.add("DELETE", P + "/faults", "emulator/faults/clear")(r.clear_faults)
router.add("DELETE", P + "/faults/(?P<fault>[^/]+)", "emulator/faults/delete")(r.delete_fault)
router.add("GET", P + "/throttling", "emulator/throttling")(r.get_throttling)
router.add("PUT", P + "/throttling", "emulator/throttling/set")(r.put_throttling)
router.add("GET", P + "/settings", "emulator/settings")(r.get_settings)
router.add("PATCH", P + "/settings", "emulator/settings/set")(r.patch_settings)
