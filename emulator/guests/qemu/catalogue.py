"""Marketplace entries served by the QEMU base image: Debian 12 (skus ``12`` and ``12-gen2``).

Requests never build: the versions are the base images already in the cache (built beforehand
with ``python -m emulator.guests.qemu.image build``), each with its own file disk, so ``latest``
is the newest build. With no image cached the SKUs stay listed but creating a VM from them
answers 409 telling the user to build the image.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from emulator.guests.qemu import image as images
from emulator.guests.qemu.runtime import base_disk

log = logging.getLogger("emulator.guests.qemu")

SKUS = (("12", "V1"), ("12-gen2", "V2"))
BUILD_HINT = ("No Debian base image is built for the QEMU guests (LOCAL_AZURE_LINUX_RUNTIME=qemu). Build it "
              "first with `python -m emulator.guests.qemu.image build`, then create the VM again.")


def cached_images(cache_dir: Path | None = None, suite: str = "bookworm") -> list[images.BaseImage]:
    """Every complete image of the current recipe in the cache, oldest first; never builds."""
    cache = Path(cache_dir) if cache_dir else images.default_cache_dir()
    recipe = images.recipe_digest(suite)
    found = []
    for meta in sorted(cache.glob(f"*/{images.META}")):
        try:
            if json.loads(meta.read_text()).get("recipe") != recipe:
                continue
            found.append(images._load(meta.parent))  # the cache's own reader; build_base_image could build
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable base image entry %s", meta.parent, exc_info=True)
    return sorted(found, key=lambda i: i.built_at)


def entries(cache_dir: Path | None = None) -> list[dict[str, Any]]:
    """Catalogue entries (``catalogue.json`` shape) replacing the simulated Debian 12 ones."""
    built = cached_images(cache_dir)
    versions = [{"version": img.version, "osVersion": "12", "disk": base_disk(img)} for img in built]
    out = []
    for sku, generation in SKUS:
        raw: dict[str, Any] = {
            "publisher": "Debian", "offer": "debian-12", "sku": sku, "osType": "Linux",
            "hyperVGeneration": generation, "architecture": "x64", "diskSizeGB": 30, "osName": "debian",
            "guestImage": "debian-12", "replace": True, "versions": [dict(v) for v in versions],
        }
        if not built:
            raw["unavailable"] = BUILD_HINT
        out.append(raw)
    return out
