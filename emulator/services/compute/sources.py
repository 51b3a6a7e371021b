"""Where a VM's OS disk comes from: a Marketplace image, a managed image or a gallery image.

Every source answers the same dict (``image_source`` shape): ``disk`` (descriptor for the guest
runtime), ``os_type``, ``os_state``, ``hyper_v_generation``, ``version_id``, plus optional facts
(``exact_version``, ``size_gb``, ``os_name``, ``os_version``).
"""

from __future__ import annotations

import copy
from typing import Any

from emulator.core import ids
from emulator.core.context import Context
from emulator.core.errors import InvalidParameter
from emulator.services.compute import images, marketplace


def resolve(ctx: Context, reference: dict[str, Any] | None, location: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The source an imageReference names, and the imageReference as the VM body shows it."""
    if not isinstance(reference, dict) or not reference:
        raise InvalidParameter("Required parameter 'imageReference' is missing (null).", target="imageReference")
    echo = copy.deepcopy(reference)
    echo.pop("exactVersion", None)
    if reference.get("sharedGalleryImageId") or reference.get("communityGalleryImageId"):
        raise InvalidParameter(
            "Shared and community gallery images are not available in the local Azure; use the gallery image id.",
            target="imageReference",
        )
    image_id = reference.get("id")
    if image_id:
        source = _by_id(ctx, str(image_id), location)
    else:
        for field in ("publisher", "offer", "sku"):
            if not reference.get(field):
                raise InvalidParameter(
                    f"Required parameter 'imageReference.{field}' is missing (null).", target=f"imageReference.{field}"
                )
        echo.setdefault("version", "latest")
        source = marketplace.source(ctx.subscription, location, echo)
        echo["exactVersion"] = source["exact_version"]
    if source.get("exact_version") and image_id:
        echo["exactVersion"] = source["exact_version"]
    return source, echo


def _by_id(ctx: Context, image_id: str, location: str) -> dict[str, Any]:
    try:
        rid = ids.parse(image_id)
    except ValueError:
        raise InvalidParameter(
            f"The value '{image_id}' of parameter 'imageReference.id' is invalid.", target="imageReference.id"
        ) from None
    rtype = rid.type.lower()
    if rtype == images.IMAGE_TYPE.lower():
        return images.image_source(ctx, image_id, location)
    if rtype in ("microsoft.compute/galleries/images", "microsoft.compute/galleries/images/versions"):
        from emulator.services.gallery.models import image_source as gallery_image_source

        source = dict(gallery_image_source(ctx, image_id, location))
        if source.get("version_id"):
            source.setdefault("exact_version", str(source["version_id"]).rstrip("/").rsplit("/", 1)[-1])
        return source
    raise InvalidParameter(
        f"The value '{image_id}' of parameter 'imageReference.id' is invalid.", target="imageReference.id"
    )
