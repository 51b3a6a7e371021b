"""Routes of Microsoft.Compute/galleries, their image definitions and image versions."""

from __future__ import annotations

from emulator.core.routing import NAME, RG, SUB, Router
from emulator.services.gallery import responses as r

router = Router()
GALLERIES = RG + r"/providers/Microsoft\.Compute/galleries"
GALLERY = GALLERIES + "/" + NAME.format("gallery")
IMAGES = GALLERY + "/images"
IMAGE = IMAGES + "/" + NAME.format("image")
VERSIONS = IMAGE + "/versions"
VERSION = VERSIONS + "/" + NAME.format("version")

GAL, IMG, VER = "Microsoft.Compute/galleries", "Microsoft.Compute/galleries/images", "Microsoft.Compute/galleries/images/versions"
router.add("GET", SUB + r"/providers/Microsoft\.Compute/galleries", f"{GAL}/read")(r.list_galleries)
router.add("GET", GALLERIES, f"{GAL}/read")(r.list_galleries_in_group)
router.add("PUT", GALLERY, f"{GAL}/write")(r.put_gallery)
router.add("GET", GALLERY, f"{GAL}/read")(r.get_gallery)
router.add("PATCH", GALLERY, f"{GAL}/write")(r.patch_gallery)
router.add("DELETE", GALLERY, f"{GAL}/delete")(r.delete_gallery)
router.add("GET", IMAGES, f"{IMG}/read")(r.list_definitions)
router.add("PUT", IMAGE, f"{IMG}/write")(r.put_definition)
router.add("GET", IMAGE, f"{IMG}/read")(r.get_definition)
router.add("PATCH", IMAGE, f"{IMG}/write")(r.patch_definition)
router.add("DELETE", IMAGE, f"{IMG}/delete")(r.delete_definition)
router.add("GET", VERSIONS, f"{VER}/read")(r.list_versions)
router.add("PUT", VERSION, f"{VER}/write")(r.put_version)
router.add("GET", VERSION, f"{VER}/read")(r.get_version)
router.add("PATCH", VERSION, f"{VER}/write")(r.patch_version)
router.add("DELETE", VERSION, f"{VER}/delete")(r.delete_version)
