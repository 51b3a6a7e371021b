"""Routes of Microsoft.Compute: virtual machines, managed images, OS disks and the Marketplace."""

from __future__ import annotations

from emulator.core.routing import RG, SUB, Router
from emulator.services.compute import responses as r

router = Router()
NS = "/providers/Microsoft.Compute"
VM = RG + NS + r"/virtualMachines/(?P<vm>[^/]+)"
VMT = "Microsoft.Compute/virtualMachines"

router.add("PUT", VM, f"{VMT}/write")(r.put_vm)
router.add("PATCH", VM, f"{VMT}/write")(r.patch_vm)
router.add("GET", VM, f"{VMT}/read")(r.get_vm)
router.add("DELETE", VM, f"{VMT}/delete")(r.delete_vm)
router.add("GET", VM + "/instanceView", f"{VMT}/instanceView/read")(r.instance_view_of)
router.add("POST", VM + "/start", f"{VMT}/start/action")(r.start_vm)
router.add("POST", VM + "/powerOff", f"{VMT}/powerOff/action")(r.power_off_vm)
router.add("POST", VM + "/deallocate", f"{VMT}/deallocate/action")(r.deallocate_vm)
router.add("POST", VM + "/restart", f"{VMT}/restart/action")(r.restart_vm)
router.add("POST", VM + "/generalize", f"{VMT}/generalize/action")(r.generalize_vm)
router.add("POST", VM + "/runCommand", f"{VMT}/runCommand/action")(r.run_command)
router.add("GET", RG + NS + "/virtualMachines", f"{VMT}/read")(r.list_vms)
router.add("GET", SUB + NS + "/virtualMachines", f"{VMT}/read")(r.list_all_vms)
router.add("GET", SUB + NS + r"/locations/(?P<location>[^/]+)/virtualMachines", f"{VMT}/read")(r.list_vms_by_location)
router.add("GET", SUB + NS + r"/locations/(?P<location>[^/]+)/usages", "Microsoft.Compute/locations/usages/read")(
    r.list_usages)

IMAGE = RG + NS + r"/images/(?P<image>[^/]+)"
router.add("PUT", IMAGE, "Microsoft.Compute/images/write")(r.put_image)
router.add("PATCH", IMAGE, "Microsoft.Compute/images/write")(r.patch_image)
router.add("GET", IMAGE, "Microsoft.Compute/images/read")(r.get_image)
router.add("DELETE", IMAGE, "Microsoft.Compute/images/delete")(r.delete_image)
router.add("GET", RG + NS + "/images", "Microsoft.Compute/images/read")(r.list_images)
router.add("GET", SUB + NS + "/images", "Microsoft.Compute/images/read")(r.list_images)

DISK = RG + NS + r"/disks/(?P<disk>[^/]+)"
router.add("GET", DISK, "Microsoft.Compute/disks/read")(r.get_disk)
router.add("DELETE", DISK, "Microsoft.Compute/disks/delete")(r.delete_disk)
router.add("GET", RG + NS + "/disks", "Microsoft.Compute/disks/read")(r.list_disks)
router.add("GET", SUB + NS + "/disks", "Microsoft.Compute/disks/read")(r.list_disks)

PUB = SUB + NS + r"/locations/(?P<location>[^/]+)/publishers"
MP = "Microsoft.Compute/locations/publishers/artifacttypes/offers/skus/versions/read"
OFFERS = PUB + r"/(?P<publisher>[^/]+)/artifacttypes/vmimage/offers"
SKUS = OFFERS + r"/(?P<offer>[^/]+)/skus"
VERSIONS = SKUS + r"/(?P<sku>[^/]+)/versions"
router.add("GET", PUB, "Microsoft.Compute/locations/publishers/read")(r.list_publishers)
router.add("GET", OFFERS, MP)(r.list_offers)
router.add("GET", SKUS, MP)(r.list_skus)
router.add("GET", VERSIONS, MP)(r.list_versions)
router.add("GET", VERSIONS + r"/(?P<version>[^/]+)", MP)(r.get_version)
