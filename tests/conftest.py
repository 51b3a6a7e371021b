"""Shared fixtures: one local Azure per test session, and the factory's hook pointed at it.

Pass ``--real-azure=<airflow connection uri or json>`` (or set IMAGE_FACTORY_REAL_AZURE_CONN) to run
the tests marked ``azure`` against real Azure instead; emulator-only tests are skipped then.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tests.localazure import LocalAzure  # noqa: E402

CONN_ID = "local_azure"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--real-azure", default=os.environ.get("IMAGE_FACTORY_REAL_AZURE_CONN"),
                     help="Airflow connection (URI or JSON) for real Azure; runs tests marked 'azure' there")


@pytest.fixture(scope="session")
def real_azure(pytestconfig: pytest.Config) -> str | None:
    value: str | None = pytestconfig.getoption("--real-azure")
    return value


@pytest.fixture(scope="session")
def local_azure(tmp_path_factory: pytest.TempPathFactory, real_azure: str | None) -> Iterator[LocalAzure]:
    """A running emulator for the whole session, with instant durations (time factor 0)."""
    if real_azure:
        pytest.skip("emulator-only test: running against real Azure")
    emu = LocalAzure(tmp_path_factory.mktemp("local-azure")).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def azure_conn(real_azure: str | None, request: pytest.FixtureRequest) -> str:
    """The Airflow connection the hook uses: real Azure when asked, else the local one."""
    if real_azure:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = real_azure
    else:
        emu: LocalAzure = request.getfixturevalue("local_azure")
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emu.connection_uri_env()
    return CONN_ID


@pytest.fixture(scope="session")
def arm(azure_conn: str):  # type: ignore[no-untyped-def]
    """The factory's hook: every SDK client comes from it, as in production code."""
    from image_factory.hooks.arm import AzureResourceManagerHook

    return AzureResourceManagerHook(azure_conn)


@pytest.fixture
def faults(local_azure: LocalAzure) -> Iterator[LocalAzure]:
    """The emulator, with every fault rule cleared after the test."""
    yield local_azure
    local_azure.clear_faults()


@pytest.fixture
def location() -> str:
    return "westeurope"


@pytest.fixture
def group(arm, location: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh resource group for one test, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    arm.resources.resource_groups.create_or_update(name, {"location": location, "tags": {"factory": "tests"}})
    yield name
    try:
        arm.resources.resource_groups.begin_delete(name).result()
    except Exception:  # a test may have deleted it, or locked it on purpose and failed
        pass
