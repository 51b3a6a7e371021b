"""Routes of Microsoft.Storage: storage accounts, their actions and blob containers, and the operation status."""

from __future__ import annotations

from emulator.core.routing import RG, SUB, Router
from emulator.services.storage import responses as r

router = Router()
P = "/providers/Microsoft.Storage"
T = "Microsoft.Storage/storageAccounts"
ACCOUNT = RG + P + r"/storageAccounts/(?P<name>[^/]+)"
CONTAINERS = ACCOUNT + r"/blobServices/default/containers"

router.add("POST", SUB + P + "/checkNameAvailability", "Microsoft.Storage/checkNameAvailability/read")(r.check_name)
router.add("GET", SUB + P + r"/locations/(?P<location>[^/]+)/asyncoperations/(?P<operation>[^/]+)",
           "Microsoft.Storage/locations/asyncoperations/read")(r.operation)
router.add("GET", SUB + P + "/storageAccounts", f"{T}/read")(r.list_subscription)
router.add("GET", RG + P + "/storageAccounts", f"{T}/read")(r.list_group)
router.add("PUT", ACCOUNT, f"{T}/write")(r.put_account)
router.add("GET", ACCOUNT, f"{T}/read")(r.get_account)
router.add("PATCH", ACCOUNT, f"{T}/write")(r.patch_account)
router.add("DELETE", ACCOUNT, f"{T}/delete")(r.delete_account)
router.add("POST", ACCOUNT + "/listKeys", f"{T}/listkeys/action")(r.list_keys)
router.add("POST", ACCOUNT + "/regenerateKey", f"{T}/regeneratekey/action")(r.regenerate_key)
router.add("POST", ACCOUNT + "/ListAccountSas", f"{T}/ListAccountSas/action")(r.list_account_sas)
router.add("POST", ACCOUNT + "/ListServiceSas", f"{T}/ListServiceSas/action")(r.list_service_sas)
router.add("GET", CONTAINERS, f"{T}/blobServices/containers/read")(r.list_containers)
router.add("PUT", CONTAINERS + r"/(?P<container>[^/]+)", f"{T}/blobServices/containers/write")(r.put_container)
router.add("GET", CONTAINERS + r"/(?P<container>[^/]+)", f"{T}/blobServices/containers/read")(r.get_container)
router.add("DELETE", CONTAINERS + r"/(?P<container>[^/]+)", f"{T}/blobServices/containers/delete")(r.delete_container)
