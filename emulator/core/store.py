"""The emulator's state: resources, operations and settings in SQLite, so a restart loses nothing.

One connection guarded by a re-entrant lock: the server is one process and the store is the
only shared state, so holding the lock for the length of a transaction makes requests safe to
run concurrently.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    key TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    parent TEXT NOT NULL,
    grp TEXT,
    body TEXT NOT NULL,
    internal TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS resources_parent ON resources(parent);
CREATE INDEX IF NOT EXISTS resources_type ON resources(type);
CREATE TABLE IF NOT EXISTS operations (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    ready_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_due ON operations(status, ready_at);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass
class Resource:
    """One ARM resource: its wire representation (``body``) and emulator-private state."""

    id: str
    type: str
    body: dict[str, Any]
    internal: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.id.lower()

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.body.setdefault("properties", {})
        return props


def _parent_key(resource_id: str) -> str:
    """The lower-cased id of the parent resource (child types sit two segments up)."""
    parts = resource_id.lower().split("/")
    if "providers" in parts:
        idx = len(parts) - 1 - parts[::-1].index("providers")  # the last one: extension resources (locks)
        if len(parts) - idx > 4:  # nested: .../providers/ns/type/name/child/name
            return "/".join(parts[:-2])
        return "/".join(parts[:idx])  # top-level: parent is the resource group
    return "/".join(parts[:-2])


def _group(resource_id: str) -> str | None:
    """The group a resource lives in (None for the group itself and for subscription-level ids)."""
    parts = resource_id.lower().split("/")
    return parts[4] if len(parts) > 5 and parts[3] == "resourcegroups" else None


class Store:
    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        row = self._conn.execute("SELECT COALESCE(MAX(seq), 0) FROM resources").fetchone()
        self._seq = int(row[0])

    @contextmanager
    def tx(self) -> Iterator[Store]:
        """A transaction; nested calls join the outer one."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._conn.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # resources -----------------------------------------------------------------
    def get(self, resource_id: str) -> Resource | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, type, body, internal FROM resources WHERE key = ?", (resource_id.lower(),)
            ).fetchone()
        return _row(row) if row else None

    def put(self, resource: Resource) -> None:
        with self._lock:
            existing = self._conn.execute("SELECT seq FROM resources WHERE key = ?", (resource.key,)).fetchone()
            if existing:
                seq = existing[0]
            else:
                self._seq += 1
                seq = self._seq
            self._conn.execute(
                "INSERT OR REPLACE INTO resources (key, id, type, parent, grp, body, internal, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    resource.key,
                    resource.id,
                    resource.type.lower(),
                    _parent_key(resource.id),
                    _group(resource.id),
                    json.dumps(resource.body),
                    json.dumps(resource.internal),
                    seq,
                ),
            )

    def delete(self, resource_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM resources WHERE key = ?", (resource_id.lower(),))
            return cur.rowcount > 0

    def children(self, parent_id: str, resource_type: str | None = None) -> list[Resource]:
        sql = "SELECT id, type, body, internal FROM resources WHERE parent = ?"
        args: list[Any] = [parent_id.lower()]
        if resource_type:
            sql += " AND type = ?"
            args.append(resource_type.lower())
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [_row(r) for r in rows]

    def in_group(self, group: str) -> list[Resource]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, type, body, internal FROM resources WHERE grp = ? ORDER BY seq", (group.lower(),)
            ).fetchall()
        return [_row(r) for r in rows]

    def of_type(self, resource_type: str, scope: str = "") -> list[Resource]:
        """Every resource of a type, optionally under an id prefix (subscription or group)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, type, body, internal FROM resources WHERE type = ? AND key LIKE ? ORDER BY seq",
                (resource_type.lower(), scope.lower().rstrip("/") + "/%"),
            ).fetchall()
        return [_row(r) for r in rows]

    def all(self) -> list[Resource]:
        with self._lock:
            rows = self._conn.execute("SELECT id, type, body, internal FROM resources ORDER BY seq").fetchall()
        return [_row(r) for r in rows]

    # operations ----------------------------------------------------------------
    def put_operation(self, op_id: str, status: str, ready_at: float | None, data: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO operations (id, status, ready_at, data) VALUES (?, ?, ?, ?)",
                (op_id, status, ready_at, json.dumps(data)),
            )

    def get_operation(self, op_id: str) -> tuple[str, float | None, dict[str, Any]] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT status, ready_at, data FROM operations WHERE id = ?", (op_id,)
            ).fetchone()
        return (row[0], row[1], json.loads(row[2])) if row else None

    def due_operations(self, now: float) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM operations WHERE status = 'InProgress' AND ready_at IS NOT NULL AND ready_at <= ? "
                "ORDER BY ready_at",
                (now,),
            ).fetchall()
        return [r[0] for r in rows]

    def pending_operations(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute("SELECT id FROM operations WHERE status = 'InProgress'").fetchall()
        return [r[0] for r in rows]

    # settings ------------------------------------------------------------------
    def get_setting(self, name: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, name: str, value: Any) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, json.dumps(value))
            )

    def reset(self, keep_settings: tuple[str, ...] = ()) -> None:
        """Forget every resource and operation (and settings not named in ``keep_settings``)."""
        with self.tx():
            self._conn.execute("DELETE FROM resources")
            self._conn.execute("DELETE FROM operations")
            marks = ",".join("?" for _ in keep_settings) or "''"
            self._conn.execute(f"DELETE FROM settings WHERE name NOT IN ({marks})", keep_settings)


def _row(row: tuple[str, str, str, str]) -> Resource:
    return Resource(id=row[0], type=row[1], body=json.loads(row[2]), internal=json.loads(row[3]))
