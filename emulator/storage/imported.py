"""VHDs uploaded to the local Azure's storage accounts, brought to a local file when an image is made from one.

Importing an on-premises disk uploads a fixed VHD as a page blob (to Azurite, through a storage
account of this emulator), then names its URL as an image source. Here that URL becomes a file the
guest runtimes can use: only the blob's valid page ranges are downloaded, written at their offsets
into a sparse file, so a 30 GiB disk holding 2 GiB of data costs 2 GiB of transfer and of disk (holes
stay holes). Files are kept under ``<state>/imported/``, one per blob and ETag: a second image from
the same unchanged blob reuses the file, and a managed image made from one keeps working after the
blob (or its account) is deleted, as in Azure.
"""

from __future__ import annotations

import hashlib
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from emulator.core.context import Context
from emulator.core.errors import InvalidParameter
from emulator.storage import blobs, vhd

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

CHUNK = 4 * 1024 * 1024  # the largest page write Azure takes, and our download piece


@dataclass(frozen=True)
class BlobRef:
    account: str
    container: str
    name: str

    @property
    def disk_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def parse(uri: str) -> BlobRef | None:
    """Account, container and blob of a blob URL in either form an account of this emulator is reached by:
    Azurite's path-style ``http://127.0.0.1:<port>/<account>/<container>/<blob>`` (any port: Azurite may
    have restarted elsewhere since) or Azure's ``https://<account>.blob.core.windows.net/<container>/<blob>``."""
    parts = urlsplit(uri.strip())
    host = (parts.hostname or "").lower()
    segments = unquote(parts.path).lstrip("/")
    if parts.scheme.lower() not in ("http", "https"):
        return None
    if host.endswith(blobs.HOST_SUFFIX):
        account = host[: -len(blobs.HOST_SUFFIX)]
    elif host in ("127.0.0.1", "localhost"):
        account, _, segments = segments.partition("/")
    else:
        return None
    container, _, name = segments.partition("/")
    if not account or not container or not name:
        return None
    return BlobRef(account, container, name)


def local_account(ctx: Context, uri: str) -> BlobRef | None:
    """The blob ``uri`` names when its account is a storage account of this emulator (served by Azurite)."""
    from emulator.services.storage.models import find

    ref = parse(uri)
    if ref is None or find(ctx, ref.account) is None:
        return None
    return ref


def fetch_vhd(ctx: Context, uri: str, *, target: str = "uri") -> Path:
    """A local sparse copy of the page blob ``uri`` (an account of this emulator), downloaded once per ETag.

    A blob that is not there is Azure's "Source was not found" (InvalidParameter on ``target``).
    """
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceNotFoundError

    from emulator.services.storage import models
    from emulator.storage.azurite import client

    ref = local_account(ctx, uri)
    account = models.find(ctx, ref.account) if ref is not None else None
    if ref is None or account is None:
        raise _not_found(uri, target)
    blob = client.blob_service(ctx, account.name, models.key(account)).get_blob_client(ref.container, ref.name)
    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError as exc:
        raise _not_found(uri, target) from exc
    if str(props.blob_type).lower().rsplit(".", 1)[-1] != "pageblob":
        raise InvalidParameter(
            f"The blob {uri} is a {props.blob_type}: a VHD to make an image from must be uploaded as a page blob.",
            target=target,
        )
    etag = str(props.etag).strip('"')
    path = _cache_path(ctx, ref, etag)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    same: dict[str, Any] = {"etag": props.etag, "match_condition": MatchConditions.IfNotModified}  # no mixed versions
    try:
        with open(tmp, "wb") as out:
            out.truncate(props.size)
            for page in blob.list_page_ranges(**same):
                _download(blob, out.fileno(), int(page.start or 0), int(page.end or 0) + 1, same)
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except ResourceNotFoundError as exc:
        raise _not_found(uri, target) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _download(blob: BlobClient, fd: int, start: int, end: int, same: dict[str, Any]) -> None:
    pos = start
    while pos < end:
        n = min(CHUNK, end - pos)
        data = blob.download_blob(offset=pos, length=n, **same).readall()
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, pos)
            view, pos = view[written:], pos + written


def _cache_path(ctx: Context, ref: BlobRef, etag: str) -> Path:
    blob_key = hashlib.sha256(f"{ref.container}/{ref.name}".encode()).hexdigest()[:24]
    tag = hashlib.sha256(etag.encode()).hexdigest()[:16]
    return Path(ctx.state_dir) / "imported" / ref.account / blob_key / f"{tag}.vhd"


def _not_found(uri: str, target: str) -> InvalidParameter:
    return InvalidParameter(f"Source was not found: {uri}. Please make sure the source exists.", target=target)


def check_footer(path: Path, uri: str, target: str) -> vhd.Footer:
    """The footer of a VHD Azure accepts as an image source, else its InvalidParameter saying why not."""
    disk = unquote(urlsplit(uri).path).rsplit("/", 1)[-1]
    try:
        return vhd.check_fixed(path)
    except vhd.VhdError as exc:
        raise InvalidParameter(footer_message(exc, disk, uri), target=target) from exc


def footer_message(exc: vhd.VhdError, disk: str, uri: str) -> str:
    if exc.reason == "cookie":
        return (f"The specified cookie value in VHD footer indicates that disk '{disk}' with blob {uri} is not a "
                "supported VHD. Disk is expected to have cookie value 'conectix'.")
    if exc.reason == "alignment":
        return (f"Disk '{disk}' with blob {uri} has unsupported virtual size: {exc.detail}. "
                "The size must be a whole number (in MBs).")
    if exc.reason == "type":
        return (f"Disk '{disk}' with blob {uri} is not a supported VHD: {exc.detail}. Convert it to a fixed VHD, "
                "e.g. 'qemu-img convert -O vpc -o subformat=fixed,force_size'.")
    return f"The VHD footer of disk '{disk}' with blob {uri} is invalid: {exc.detail}."


def size_gb(footer: vhd.Footer) -> int:
    return max(1, math.ceil(footer.current_size / 1024**3))
