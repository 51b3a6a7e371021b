"""Every name and tag of a run's temporary resources, derived from the run in one place (pure).

Names are deterministic (image + a digest of the DAG run), so a retried or re-run task finds what
an earlier try created instead of making a second one, and a sweeper can tell whose it is by tag.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

PROJECT_TAG = "golden-image-factory"
TAG_PROJECT, TAG_IMAGE, TAG_RUN, TAG_CREATED, TAG_EXPIRY = "project", "image", "run-id", "created", "expiry"
TAG_VERSION_RUN = "factory-run-id"  # on published versions: which run made them
FACTORY_LOCK = "golden-image-factory-protect"  # the CanNotDelete lock on the golden images' resource group


def run_digest(dag_id: str, run_id: str) -> str:
    """Eight hex digits that identify one DAG run (names stay short: Windows computer names ≤ 15)."""
    return hashlib.sha256(f"{dag_id}\0{run_id}".encode()).hexdigest()[:8]


@dataclass(frozen=True)
class RunNames:
    image: str
    digest: str

    @classmethod
    def for_run(cls, image: str, dag_id: str, run_id: str) -> RunNames:
        return cls(image=image, digest=run_digest(dag_id, run_id))

    @property
    def resource_group(self) -> str:
        return f"rg-imgf-{self.image}-{self.digest}"

    @property
    def vnet(self) -> str:
        return f"vnet-build-{self.digest}"

    @property
    def subnet(self) -> str:
        return "build"

    @property
    def nsg(self) -> str:
        return f"nsg-build-{self.digest}"

    def public_ip(self, role: str = "build") -> str:
        return f"pip-{role}-{self.digest}"

    def nic(self, role: str = "build") -> str:
        return f"nic-{role}-{self.digest}"

    def vm(self, role: str = "build") -> str:
        return f"vm-{role}-{self.digest}"

    def computer_name(self, role: str = "build") -> str:
        """≤ 15 characters, letters, digits and hyphens: valid for Windows and Linux alike."""
        return f"{role[:5]}-{self.digest}"[:15]

    def smoke_role(self, region: str) -> str:
        return f"smoke-{region}"

    def smoke_vnet(self, region: str) -> str:
        return f"vnet-smoke-{region}-{self.digest}"

    def smoke_nsg(self, region: str) -> str:
        return f"nsg-smoke-{region}-{self.digest}"


def run_tags(image: str, run_id: str, created: datetime, ttl: timedelta) -> dict[str, str]:
    """Tags on the run's resource group and everything in it (the sweeper reads expiry)."""
    return {
        TAG_PROJECT: PROJECT_TAG,
        TAG_IMAGE: image,
        TAG_RUN: run_id[:256],
        TAG_CREATED: created.isoformat(timespec="seconds"),
        TAG_EXPIRY: (created + ttl).isoformat(timespec="seconds"),
    }


# a blob has no tags an ARM listing shows: a staging blob carries its run's tags as metadata under these names
BLOB_METADATA = {TAG_IMAGE: "imagefactory_image", TAG_RUN: "imagefactory_run_id", TAG_EXPIRY: "imagefactory_expiry"}


def run_blob_metadata(tags: dict[str, str]) -> dict[str, str]:
    """The run's tags (``run_tags``) that a staging blob carries, as blob metadata."""
    return {meta: tags[tag] for tag, meta in BLOB_METADATA.items()}


def run_tags_of_blob(metadata: dict[str, str]) -> dict[str, str]:
    """A staging blob's run tags read back from its metadata; empty when it carries none (not a run's blob)."""
    tags = {tag: metadata[meta] for tag, meta in BLOB_METADATA.items() if meta in metadata}
    return {TAG_PROJECT: PROJECT_TAG, **tags} if TAG_RUN in tags else {}


def staging_account_name(subscription_id: str, resource_group: str, image: str) -> str:
    """The storage account an image's imported disks are staged in: 24 characters, deterministic (a retry
    and the next import find it), and global like every storage account name, hence the digest."""
    digest = hashlib.sha256(f"{subscription_id.lower()}\0{resource_group.lower()}\0{image}".encode()).hexdigest()
    return f"imgf{digest[:20]}"


def role_assignment_name(scope: str, principal_id: str, role_definition_id: str) -> str:
    """The GUID of one principal's role at one scope: the same share always gets the same name, so a
    retried task finds its assignment instead of making a second (ARM ids are case-insensitive)."""
    key = "\0".join(part.lower().rstrip("/") for part in (scope, principal_id, role_definition_id))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{PROJECT_TAG}:role-assignment:{key}"))
