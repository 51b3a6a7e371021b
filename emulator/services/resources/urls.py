"""Routes of Microsoft.Resources and of the providers' operation-status resources."""

from __future__ import annotations

from emulator.core.routing import RG, SUB, Router
from emulator.services.resources import responses as r

router = Router()
router.add("GET", r"/subscriptions", "Microsoft.Resources/subscriptions/read")(r.list_subscriptions)
router.add("GET", r"/tenants", "Microsoft.Resources/tenants/read")(r.list_tenants)
router.add("GET", SUB, "Microsoft.Resources/subscriptions/read")(r.get_subscription)
router.add("GET", SUB + r"/resourcegroups", "Microsoft.Resources/subscriptions/resourceGroups/read")(r.list_groups)
router.add("GET", SUB + r"/resources", "Microsoft.Resources/subscriptions/resources/read")(r.list_subscription_resources)
router.add("PUT", RG, "Microsoft.Resources/subscriptions/resourceGroups/write")(r.put_group)
router.add("PATCH", RG, "Microsoft.Resources/subscriptions/resourceGroups/write")(r.patch_group)
router.add("GET", RG, "Microsoft.Resources/subscriptions/resourceGroups/read")(r.get_group)
router.add("HEAD", RG, "Microsoft.Resources/subscriptions/resourceGroups/read")(r.head_group)
router.add("DELETE", RG, "Microsoft.Resources/subscriptions/resourceGroups/delete")(r.delete_group)
router.add("GET", RG + r"/resources", "Microsoft.Resources/subscriptions/resourceGroups/resources/read")(r.list_group_resources)
router.add("GET", SUB + r"/operationresults/(?P<operation>[^/]+)", "Microsoft.Resources/operationResults/read")(r.operation_results)
for ns, kind in (("Microsoft.Compute", "operations"), ("Microsoft.Compute", "capsOperations"), ("Microsoft.Network", "operations")):
    router.add("GET", SUB + rf"/providers/{ns}/locations/(?P<location>[^/]+)/{kind}/(?P<operation>[^/]+)",
               f"{ns}/locations/{kind}/read")(r.operation)
