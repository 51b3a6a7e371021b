"""Operations API of the compute service: regional vCPU quotas (``/_emulator/quotas``)."""

from __future__ import annotations

from emulator.core.routing import Router
from emulator.services.compute import responses as r

router = Router()
P = "/_emulator/quotas"
router.add("GET", P, "emulator/quotas")(r.list_quotas)
router.add("GET", P + "/(?P<location>[^/]+)", "emulator/quotas/read")(r.get_quota)
router.add("PUT", P + "/(?P<location>[^/]+)", "emulator/quotas/set")(r.put_quota)
router.add("DELETE", P + "/(?P<location>[^/]+)/highWater", "emulator/quotas/highWater/reset")(r.reset_high_water)
