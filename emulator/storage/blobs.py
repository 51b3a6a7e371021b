"""Blobs on disk: ``<state dir>/blobs/{account}/{container}/{name}``, addressed by their Azure URL.

Only what gallery image versions need from Azure Storage: a place to upload VHDs to, the URL
``https://{account}.blob.core.windows.net/{container}/{name}`` that names one, and the checks
Azure makes on it. Writes go to a temporary file renamed into place, so a reader never sees half a
blob, and a blob that is replaced keeps its old bytes for anything that hard-linked them.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

from emulator.core.context import Context
from emulator.core.errors import ArmError
from emulator.storage import vhd

HOST_SUFFIX = ".blob.core.windows.net"
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9]))*$")


def root(ctx: Context) -> Path:
    return Path(ctx.state_dir) / "blobs"


def validate(account: str, container: str, name: str) -> None:
    """Azure's naming rules for accounts, containers and blob names (plus: no path tricks)."""
    if not _ACCOUNT.match(account):
        raise ArmError(
            f"The storage account name '{account}' is invalid: 3-24 lowercase letters and digits.",
            code="AccountNameInvalid", target="account",
        )
    if not _CONTAINER.match(container):
        raise ArmError(
            f"The container name '{container}' is invalid: 3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit.",
            code="InvalidResourceName", target="container",
        )
    parts = name.split("/")
    if not name or len(name) > 1024 or "\\" in name or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        raise ArmError(
            f"The blob name '{name}' is invalid: 1-1024 characters, '/'-separated segments that are not empty, "
            "'.', '..' or hidden.",
            code="InvalidResourceName", target="name",
        )


def path_of(ctx: Context, account: str, container: str, name: str) -> Path:
    validate(account, container, name)
    return root(ctx) / account / container / Path(*name.split("/"))


def url_of(account: str, container: str, name: str) -> str:
    return f"https://{account}{HOST_SUFFIX}/{container}/{name}"


def parse_url(url: str) -> tuple[str, str, str]:
    """(account, container, name) of a blob URL; ValueError when it is not one."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme.lower() not in ("https", "http") or not host.endswith(HOST_SUFFIX):
        raise ValueError(f"not an Azure blob URL: {url!r}")
    account = host[: -len(HOST_SUFFIX)]
    container, _, name = unquote(parts.path).lstrip("/").partition("/")
    if not account or not container or not name:
        raise ValueError(f"not an Azure blob URL: {url!r}")
    return account, container, name


def write(ctx: Context, account: str, container: str, name: str, chunks: Iterable[bytes]) -> dict[str, Any]:
    """Store a blob from ``chunks``; returns its properties."""
    writer = Writer(ctx, account, container, name)
    try:
        for chunk in chunks:
            writer.add(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


_HOLE_BLOCK = 64 * 1024


class Writer:
    """Incremental form of ``write`` for streamed uploads: ``add`` chunks, then ``commit`` or ``abort``."""

    def __init__(self, ctx: Context, account: str, container: str, name: str) -> None:
        self.ctx, self.account, self.container, self.name = ctx, account, container, name
        self.target = path_of(ctx, account, container, name)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.target.with_name(f".{self.target.name}.{uuid.uuid4().hex}.part")
        self._fh: BinaryIO | None = open(self.tmp, "wb")
        self._md5 = hashlib.md5(usedforsecurity=False)

    def add(self, chunk: bytes) -> None:
        """Append a chunk; all-zero 64 KiB blocks become holes, so an uploaded disk stays sparse."""
        assert self._fh is not None
        self._md5.update(chunk)
        for start in range(0, len(chunk), _HOLE_BLOCK):
            block = chunk[start:start + _HOLE_BLOCK]
            if block.count(0) == len(block):
                self._fh.seek(len(block), os.SEEK_CUR)
            else:
                self._fh.write(block)

    def commit(self) -> dict[str, Any]:
        assert self._fh is not None
        self._fh.truncate()  # a trailing hole still counts towards the size
        self._fh.close()
        self._fh = None
        os.replace(self.tmp, self.target)
        return properties(self.ctx, self.account, self.container, self.name, content_md5=self._md5.hexdigest())

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.tmp.exists():
            self.tmp.unlink()


def properties(ctx: Context, account: str, container: str, name: str, *, content_md5: str | None = None) -> dict[str, Any]:
    """What the operations API shows about a blob, including whether Azure would take it as a VHD."""
    path = path_of(ctx, account, container, name)
    if not path.is_file():
        raise ArmError(f"The specified blob '{url_of(account, container, name)}' does not exist.", code="BlobNotFound",
                       status=404)
    stat = path.stat()
    out: dict[str, Any] = {
        "account": account,
        "container": container,
        "name": name,
        "url": url_of(account, container, name),
        "size": stat.st_size,
        "lastModified": datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat().replace("+00:00", "Z"),
    }
    if content_md5:
        out["contentMD5"] = content_md5
    try:
        footer = vhd.check_fixed(path)
        out["vhd"] = {"valid": True, "diskType": footer.disk_type_name, "virtualSize": footer.current_size}
    except vhd.VhdError as exc:
        out["vhd"] = {"valid": False, "reason": exc.reason, "detail": exc.detail}
    return out


def list_blobs(ctx: Context) -> list[dict[str, Any]]:
    base = root(ctx)
    out: list[dict[str, Any]] = []
    if not base.is_dir():
        return out
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = path.relative_to(base).parts
        if len(rel) < 3:
            continue
        out.append(properties(ctx, rel[0], rel[1], "/".join(rel[2:])))
    return out


def delete(ctx: Context, account: str, container: str, name: str) -> bool:
    path = path_of(ctx, account, container, name)
    if not path.is_file():
        return False
    path.unlink()
    return True
