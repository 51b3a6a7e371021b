"""A fresh lineage store per test: a SQLite file, or a temporary database on the local PostgreSQL server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from image_factory.lineage.store import LineageStore

# the server CI machines run (trust auth); IMAGE_FACTORY_TEST_POSTGRES points at another one
POSTGRES = os.environ.get("IMAGE_FACTORY_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A uniquely named database, dropped afterwards (connections still open are closed by force)."""
    import psycopg
    from sqlalchemy.engine import URL

    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the lineage store tests need PostgreSQL ({POSTGRES}; set IMAGE_FACTORY_TEST_POSTGRES "
                    f"to another server): {exc}", pytrace=False)
    name = f"lineage_test_{uuid.uuid4().hex[:12]}"
    info = admin.info
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield URL.create("postgresql+psycopg", username=info.user, password=info.password or None,
                             host=info.host, port=info.port, database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lineage.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[LineageStore]:
    s = LineageStore(store_url)
    try:
        yield s
    finally:
        s.close()
