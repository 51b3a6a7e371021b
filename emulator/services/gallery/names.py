"""Naming rules of galleries, image definitions, versions and definition identifiers, with Azure's errors."""

from __future__ import annotations

import re

from emulator.core.errors import InvalidParameter

INT32_MAX = 2**31 - 1
_GALLERY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.]{0,78}[A-Za-z0-9])?$")
_DEFINITION = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.\-]{0,78}[A-Za-z0-9])?$")
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9_.\-]*[A-Za-z0-9_\-]$")
IDENTIFIER_LIMITS = {"publisher": 128, "offer": 64, "sku": 64}


def check_gallery(name: str) -> None:
    if not _GALLERY.match(name):
        raise InvalidParameter(
            "Gallery name is invalid. Allowed characters are English alphanumeric characters, with underscores, and "
            "periods allowed in the middle, up to 80 characters total. All other special characters, including "
            "dashes, are disallowed.",
            target="galleryName",
        )


def check_definition(name: str) -> None:
    if not _DEFINITION.match(name):
        raise InvalidParameter(
            f"The entity name '{name}' is invalid according to its validation rule: "
            r"^[^_\W][\w-._]{0,79}(?<![-.])$.",
            target="galleryImageName",
        )


def version_key(name: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a valid version name, else None."""
    m = _VERSION.match(name)
    if not m:
        return None
    parts = tuple(int(g) for g in m.groups())
    if any(p > INT32_MAX for p in parts):
        return None
    return parts[0], parts[1], parts[2]


def check_version(name: str) -> tuple[int, int, int]:
    key = version_key(name)
    if key is None:
        raise InvalidParameter(
            "The image version name is invalid. The image version name should follow Major(int).Minor(int).Patch(int) "
            "format, for e.g: 1.0.0, 2018.12.1 etc.",
            target="galleryImageVersionName",
        )
    return key


def check_identifier_field(field: str, value: object) -> str:
    limit = IDENTIFIER_LIMITS[field]
    if not isinstance(value, str) or not value or len(value) > limit or not _IDENTIFIER.match(value):
        raise InvalidParameter(
            f"Asset name galleryImage.properties.identifier.{field} is not valid. It cannot be empty. Allowed "
            "characters are uppercase or lowercase letters, digits, hyphen(-), period (.), underscore (_). Names are "
            f"not allowed to end with period(.). The length of the name cannot exceed {limit} characters.",
            target=f"galleryImage.properties.identifier.{field}",
        )
    return value
