"""Routes of the simulated guests' operations API (public router, outside ARM's authentication)."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.guests.simulated import responses as r

router = Router()
P = "/_emulator/guests"
G = P + r"/(?P<guest>[^/]+)"
router.add("GET", P, "emulator/guests")(r.list_guests)
router.add("GET", "/_emulator/guest-archive", "emulator/guest-archive")(r.get_archive)
router.add("PUT", "/_emulator/guest-archive", "emulator/guest-archive/set")(r.put_archive)
router.add("GET", G, "emulator/guests/get")(r.get_guest)
router.add("GET", G + "/commands", "emulator/guests/commands")(r.list_commands)
router.add("POST", G + "/run", "emulator/guests/run")(r.run)
router.add("GET", G + "/faults", "emulator/guests/faults")(r.list_faults)
router.add("POST", G + "/faults", "emulator/guests/faults/add")(r.add_fault)
router.add("DELETE", G + "/faults", "emulator/guests/faults/clear")(r.clear_faults)
router.add("DELETE", G + r"/faults/(?P<fault>[^/]+)", "emulator/guests/faults/delete")(r.delete_fault)
