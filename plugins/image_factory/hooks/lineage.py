"""Where the lineage store lives: an Airflow connection, an environment variable, or SQLite beside Airflow.

Order: ``IMAGE_FACTORY_LINEAGE_URL`` (a SQLAlchemy URL, for tools and tests), else the Airflow
connection ``image_factory_lineage`` (conn type ``postgres`` or ``sqlite``), else an embedded
SQLite file in ``$AIRFLOW_HOME``. Every component (tasks, the scheduler's listener, the UI
page, the command line) resolves it the same way, so they all read and write one store.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

from image_factory.lineage.store import LineageStore

LINEAGE_CONN_ID = "image_factory_lineage"
URL_ENV = "IMAGE_FACTORY_LINEAGE_URL"
DEFAULT_FILE = "image_factory_lineage.db"


def url_from_connection(conn: Any) -> str:
    """A SQLAlchemy URL for an Airflow connection (psycopg 3 drives Postgres)."""
    from sqlalchemy.engine import URL

    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql"):
        return URL.create("postgresql+psycopg", username=conn.login or None, password=conn.password or None,
                          host=conn.host or None, port=conn.port or None,
                          database=conn.schema or None).render_as_string(hide_password=False)
    if kind == "sqlite":
        return f"sqlite:///{conn.host}"
    raise ValueError(f"connection {LINEAGE_CONN_ID}: conn_type must be postgres or sqlite, not {conn.conn_type!r}")


def _airflow_connection() -> Any | None:
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # outside Airflow (the command line on a machine without it)
        return None
    try:
        return BaseHook.get_connection(LINEAGE_CONN_ID)
    except Exception:
        return None


def store_url() -> str:
    if url := os.environ.get(URL_ENV):
        return url
    return _configured_url(os.environ.get("AIRFLOW_HOME"))


@cache
def _configured_url(airflow_home: str | None) -> str:
    """Once per process: the connection lookup is a round trip (and, in the scheduler, a metadata-DB session)."""
    if os.environ.get("AIRFLOW_CONN_" + LINEAGE_CONN_ID.upper()) or airflow_home:
        conn = _airflow_connection()
        if conn is not None:
            return url_from_connection(conn)
    home = Path(airflow_home or Path.home() / "airflow")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / DEFAULT_FILE}"


@cache
def _store(url: str) -> LineageStore:
    return LineageStore(url)


def lineage_store(url: str | None = None) -> LineageStore:
    """The one store of this process (engines are pooled per URL)."""
    return _store(url or store_url())


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
