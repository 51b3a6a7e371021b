"""The package manifest of an imported disk, read from its dpkg database (what a build reads in the guest).

A build records ``dpkg-query`` run in its VM; an import has no VM before it publishes, so the same
``name=version`` list comes from ``/var/lib/dpkg/status`` on the disk's root filesystem. Lineage then
answers "which versions contain openssl 3.0.x" for imported images as for built ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from image_factory.disks.filesystem import ExtFilesystem, FilesystemError

if TYPE_CHECKING:
    from image_factory.disks.inspection import DiskReport

DPKG_STATUS = "/var/lib/dpkg/status"


def parse_dpkg_status(text: str) -> list[str]:
    """``name=version`` of every package whose status is ``install ok installed``, sorted."""
    found: set[str] = set()
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue  # a continuation line (descriptions, conffiles)
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if fields.get("status") == "install ok installed" and fields.get("package") and fields.get("version"):
            name = fields["package"]
            if fields.get("architecture") not in (None, "", "all", "amd64"):
                name = f"{name}:{fields['architecture']}"
            found.add(f"{name}={fields['version']}")
    return sorted(found)


def installed_packages(report: DiskReport) -> list[str]:
    """The disk's installed Debian packages ([] without a readable root filesystem or dpkg database).

    ``report`` must describe a file whose data starts at byte 0 (raw or fixed VHD): the prepared disk."""
    if report.root is None:
        return []
    try:
        text = ExtFilesystem(report.path, report.root.offset).read_text(DPKG_STATUS)
    except FilesystemError:
        return []
    return parse_dpkg_status(text or "")
