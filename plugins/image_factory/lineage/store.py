"""The lineage store: every version's record, queryable through SQLAlchemy (SQLite by default, or Postgres).

A record is kept whole as JSON, with the columns queries filter on beside it: the version's
artifact id (its lower-cased ARM id), the image, the parent it was built from, the Marketplace
source, the status and the life-cycle marks (revoked, source revoked, deleted). Packages get a
table of their own so manifests can be compared. One row per (artifact, run): a run that failed
before capture and a later run that published the same version number are both kept; the
*current* record of a version is its published one, else its newest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine

from image_factory.lineage.record import PUBLISHED, artifact_id

metadata = MetaData()

records = Table(
    "lineage_records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("artifact_id", String(600), nullable=False, index=True),
    Column("run_id", String(250), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("image", String(120), nullable=False, index=True),
    Column("version", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("parent_id", String(600), index=True),
    Column("source_publisher", String(200)),
    Column("source_offer", String(200)),
    Column("source_sku", String(200)),
    Column("source_version", String(100)),
    Column("recorded_at", String(40), nullable=False),
    Column("revoked_at", String(40)),
    Column("revoked_reason", Text),
    Column("source_revoked_by", String(600)),
    Column("deleted_at", String(40)),
    Column("document", Text, nullable=False),
    UniqueConstraint("artifact_id", "run_id", name="uq_lineage_artifact_run"),
)

packages = Table(
    "lineage_packages", metadata,
    Column("record_id", Integer, ForeignKey("lineage_records.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(300), nullable=False),
    Column("version", String(300), nullable=False),
)

run_triggers = Table(
    "lineage_run_triggers", metadata,
    Column("dag_id", String(250), primary_key=True),
    Column("run_id", String(250), primary_key=True),
    Column("triggered_by", String(40)),
    Column("user", String(250)),
    Column("run_type", String(40)),
    Column("seen_at", String(40), nullable=False),
    Column("external", Boolean, default=False),
)


class LineageError(LookupError):
    """A version the store does not know, or a request it cannot answer."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def split_package(line: str) -> tuple[str, str]:
    name, _, version = line.partition("=")
    return name, version


class LineageStore:
    """Save records and answer lineage questions; the schema is created on first use."""

    def __init__(self, url: str, *, engine: Engine | None = None) -> None:
        self.url = url
        # SQLite: task processes write concurrently; wait for the file lock rather than fail at once
        args = {"timeout": 30} if url.startswith("sqlite") else {}
        self.engine = engine or create_engine(url, pool_pre_ping=True, connect_args=args)
        metadata.create_all(self.engine, checkfirst=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    # writing -----------------------------------------------------------------------------
    def save(self, record: dict[str, Any]) -> int:
        """Insert or replace the record of (artifact, run); a retried recording task writes the same row."""
        source = record.get("source") or {}
        row = {
            "artifact_id": record["artifact_id"], "run_id": record["run"]["run_id"], "dag_id": record["run"]["dag_id"],
            "image": record["image"], "version": record["version"], "status": record["status"],
            "parent_id": record.get("parent_id"), "source_publisher": source.get("publisher"),
            "source_offer": source.get("offer"), "source_sku": source.get("sku"),
            "source_version": source.get("version") if source.get("publisher") else None,
            "recorded_at": record["recorded_at"], "document": json.dumps(record, sort_keys=True),
        }
        with self._tx() as conn:
            found = conn.execute(select(records.c.id).where(records.c.artifact_id == row["artifact_id"],
                                                            records.c.run_id == row["run_id"])).scalar()
            if found is None:
                inserted = conn.execute(insert(records).values(**row)).inserted_primary_key
                assert inserted is not None
                found = inserted[0]
            else:
                conn.execute(update(records).where(records.c.id == found).values(**row))
                conn.execute(delete(packages).where(packages.c.record_id == found))
            pairs = [split_package(p) for p in record.get("packages") or []]
            if pairs:
                conn.execute(insert(packages), [{"record_id": found, "name": n, "version": v} for n, v in pairs])
        return int(found)

    def record_trigger(self, dag_id: str, run_id: str, *, triggered_by: str | None, user: str | None,
                       run_type: str | None) -> None:
        """How a DAG run was started (the scheduler's listener knows; a task does not)."""
        with self._tx() as conn:
            conn.execute(delete(run_triggers).where(run_triggers.c.dag_id == dag_id, run_triggers.c.run_id == run_id))
            conn.execute(insert(run_triggers).values(dag_id=dag_id, run_id=run_id, triggered_by=triggered_by,
                                                     user=user, run_type=run_type, seen_at=_now()))

    def trigger_of(self, dag_id: str, run_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(run_triggers).where(run_triggers.c.dag_id == dag_id,
                                                          run_triggers.c.run_id == run_id)).mappings().first()
        return dict(row) if row else None

    def revoke(self, ref: str, reason: str, *, at: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Mark a version revoked and flag every descendant; (the revoked record, the descendants flagged)."""
        if not reason.strip():
            raise LineageError("reason: a revocation must say why")
        target = self.get(ref)
        when = at or _now()
        flagged = self.descendants(target["artifact_id"])
        with self._tx() as conn:
            conn.execute(update(records).where(records.c.artifact_id == target["artifact_id"])
                         .values(revoked_at=when, revoked_reason=reason))
            for d in flagged:
                conn.execute(update(records).where(records.c.artifact_id == d["artifact_id"],
                                                   records.c.source_revoked_by.is_(None))
                             .values(source_revoked_by=target["artifact_id"]))
        return self.get(target["artifact_id"]), [self.get(d["artifact_id"]) for d in flagged]

    def mark_deleted(self, ref: str, *, at: str | None = None) -> None:
        """The version is gone from Azure (retention); its record stays, for the lineage of its descendants."""
        target = self.get(ref)
        with self._tx() as conn:
            conn.execute(update(records).where(records.c.artifact_id == target["artifact_id"])
                         .values(deleted_at=at or _now()))

    # reading -----------------------------------------------------------------------------
    @staticmethod
    def _view(row: Any) -> dict[str, Any]:
        doc = json.loads(row["document"])
        doc["revoked"] = {"at": row["revoked_at"], "reason": row["revoked_reason"]} if row["revoked_at"] else None
        doc["source_revoked_by"] = row["source_revoked_by"]
        doc["deleted_at"] = row["deleted_at"]
        return doc

    def _rows(self, *where: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(records).where(*where).order_by(records.c.id)).mappings().all()
        return [dict(r) for r in rows]

    @staticmethod
    def _current(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
        published = [r for r in rows if r["status"] == PUBLISHED]
        chosen = published or rows
        return chosen[-1] if chosen else None

    def resolve(self, ref: str) -> str:
        """An artifact id from an ARM id, or ``image@version`` / ``image:version``."""
        if ref.startswith("/"):
            return artifact_id(ref)
        for sep in ("@", ":"):
            if sep in ref:
                image, version = ref.split(sep, 1)
                rows = self._rows(records.c.image == image, records.c.version == version)
                found = self._current(rows)
                if found is None:
                    raise LineageError(f"no lineage record for {image} version {version}")
                return str(found["artifact_id"])
        raise LineageError(f"{ref!r}: name a version as IMAGE@VERSION or by its resource id")

    def get(self, ref: str) -> dict[str, Any]:
        key = self.resolve(ref)
        found = self._current(self._rows(records.c.artifact_id == key))
        if found is None:
            raise LineageError(f"no lineage record for {ref}")
        return self._view(found)

    def find(self, ref: str) -> dict[str, Any] | None:
        try:
            return self.get(ref)
        except LineageError:
            return None

    def records_of_run(self, artifact: str) -> list[dict[str, Any]]:
        """Every run's record of one version (a failed try and the run that published it)."""
        return [self._view(r) for r in self._rows(records.c.artifact_id == artifact_id(artifact))]

    def versions(self, image: str | None = None) -> list[dict[str, Any]]:
        """The current record of every version (of one image), in the order they were recorded."""
        rows = self._rows(*([records.c.image == image] if image else []))
        by_artifact: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_artifact.setdefault(r["artifact_id"], []).append(r)
        current = [self._current(group) for group in by_artifact.values()]
        return [self._view(r) for r in sorted((c for c in current if c), key=lambda r: r["id"])]

    def ancestors(self, ref: str) -> list[dict[str, Any]]:
        """Parent, grandparent, … to any depth (a parent the store never recorded ends the chain as a stub)."""
        out: list[dict[str, Any]] = []
        seen = {self.resolve(ref)}
        parent = self.get(ref).get("parent_id")
        while parent and parent not in seen:
            seen.add(parent)
            found = self.find(parent)
            if found is None:
                out.append({"artifact_id": parent, "recorded": False})
                break
            out.append(found)
            parent = found.get("parent_id")
        return out

    def descendants(self, ref: str) -> list[dict[str, Any]]:
        """Every version built from this one, its children's children and so on (each with its ``depth``)."""
        start = self.resolve(ref)
        out: list[dict[str, Any]] = []
        seen, frontier, depth = {start}, [start], 0
        while frontier:
            depth += 1
            rows = self._rows(records.c.parent_id.in_(frontier))
            children = sorted({r["artifact_id"] for r in rows} - seen)
            for child in children:
                seen.add(child)
                out.append({**self.get(child), "depth": depth})
            frontier = children
        return out

    def built_from_marketplace(self, publisher: str, offer: str, sku: str, version: str | None = None) -> list[dict[str, Any]]:
        """Versions whose source was this Marketplace image (any version of it, or the one given); case-insensitive."""
        found = []
        for r in self.versions():
            s = r.get("source") or {}
            if not s.get("publisher"):
                continue
            same = (s["publisher"].lower(), s["offer"].lower(), s["sku"].lower()) == (publisher.lower(), offer.lower(), sku.lower())
            if same and (version in (None, "", "*") or str(s.get("version")) == version):
                found.append(r)
        return found

    def package_diff(self, a: str, b: str) -> dict[str, list[Any]]:
        """What changed in the package manifest from version ``a`` to version ``b``."""
        old, new = (dict(split_package(p) for p in self.get(ref).get("packages") or []) for ref in (a, b))
        return {
            "added": sorted((n, new[n]) for n in new.keys() - old.keys()),
            "removed": sorted((n, old[n]) for n in old.keys() - new.keys()),
            "changed": sorted((n, old[n], new[n]) for n in old.keys() & new.keys() if old[n] != new[n]),
        }

    def containing(self, package: str, version: str | None = None) -> list[dict[str, Any]]:
        """Versions whose manifest holds this package (at this version)."""
        query = select(records.c.artifact_id).join(packages, packages.c.record_id == records.c.id).where(
            packages.c.name == package, *([packages.c.version == version] if version else []))
        with self.engine.connect() as conn:
            keys = sorted({r[0] for r in conn.execute(query)})
        return [self.get(k) for k in keys]


def summarize(records_: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per version: what a list or a page shows before anyone opens a record."""
    out = []
    for r in records_:
        out.append({"image": r["image"], "version": r["version"], "status": r["status"], "artifact_id": r["artifact_id"],
                    "parent_id": r.get("parent_id"), "trigger": r["run"]["trigger"], "recorded_at": r["recorded_at"],
                    "regions": {g["name"]: g["state"] for g in r.get("regions") or []},
                    "smoke": {s["region"]: s["passed"] for s in r.get("smoke") or []},
                    "revoked": bool(r.get("revoked")), "source_revoked_by": r.get("source_revoked_by"),
                    "deleted": bool(r.get("deleted_at"))})
    return out
