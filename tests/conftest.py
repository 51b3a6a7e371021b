"""Shared fixtures: one local Azure per test session, and the factory's hook pointed at it.

Pass ``--real-azure=<airflow connection uri or json>`` (or set IMAGE_FACTORY_REAL_AZURE_CONN) to run
the tests marked ``azure`` against real Azure instead; emulator-only tests are skipped then.

Each test says which guest runtime it used: the header names the session emulator's Linux guest
runtime (from the environment it starts with), and every test that used a local Azure or a guest
runtime gets a ``guest_runtime`` property (junit XML, ``-v`` status) read from what it actually
used: the runtime each local Azure reported at start, or the runtime object it was handed. A test
marked ``guests(name, ...)`` fails if it used another one.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "plugins"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import tests.airflow_env  # noqa: E402,F401  (before anything imports Airflow)
from tests.localazure import STARTED, LocalAzure  # noqa: E402

CONN_ID = "local_azure"
GUEST_RUNTIME = "guest_runtime"
FIRST_START = pytest.StashKey[int]()  # index into STARTED when the test's setup began
SESSION: list[LocalAzure] = []  # the session emulator, once started


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
    SESSION[:] = [emu]
    if emu.linux_runtime != emu.configured_linux_runtime:  # what the report header promised
        emu.stop()
        raise RuntimeError(f"the session emulator runs {emu.linux_runtime} Linux guests, "
                           f"configured: {emu.configured_linux_runtime}")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A fresh metadata DB once per session (dag.test() records runs in it)."""
    from airflow.utils import db

    db.resetdb()


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


# which guest runtime each test used -------------------------------------------------------------
def pytest_report_header(config: pytest.Config) -> str:
    if config.getoption("--real-azure"):
        return "guest runtime: real Azure (no local guests)"
    from emulator.guests.qemu.runtime import linux_runtime_name

    setting = os.environ.get("LOCAL_AZURE_LINUX_RUNTIME")
    return (f"guest runtime of the session emulator: Linux {linux_runtime_name()}, Windows simulated "
            f"(LOCAL_AZURE_LINUX_RUNTIME={setting if setting is not None else 'unset'})")


def runtime_of(value: Any) -> str | None:
    """The Linux guest runtime behind a fixture value: a started local Azure, or a runtime object."""
    from emulator.guests.qemu.runtime import QemuRuntime
    from emulator.guests.router import GuestRouter
    from emulator.guests.simulated.runtime import SimulatedRuntime
    from emulator.ops.responses import linux_guest_runtime

    if isinstance(value, LocalAzure):
        return value.linux_runtime
    if isinstance(value, QemuRuntime | SimulatedRuntime | GuestRouter):
        return linux_guest_runtime(value)
    if isinstance(value, tuple):  # fixtures yielding (runtime, events, ...)
        return next((r for r in map(runtime_of, value) if r), None)
    return None


def guest_runtimes_used(item: pytest.Item) -> list[str]:
    """From the test's fixture values, the local Azures started during its setup or call, and the session
    emulator when the test went through the shared connection."""
    values: list[Any] = list(getattr(item, "funcargs", {}).values())
    values += STARTED[item.stash.get(FIRST_START, len(STARTED)):]
    if "azure_conn" in getattr(item, "fixturenames", ()) and SESSION and not item.config.getoption("--real-azure"):
        values.append(SESSION[0])
    return sorted({r for r in map(runtime_of, values) if r})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[FIRST_START] = len(STARTED)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    try:
        result = yield
    finally:
        used = guest_runtimes_used(item)
        if used:
            item.user_properties.append((GUEST_RUNTIME, ",".join(used)))
    marker = item.get_closest_marker("guests")
    if marker is not None and used and not set(used) <= set(marker.args):
        pytest.fail(f"marked guests{marker.args} but ran on {', '.join(used)} guests", pytrace=False)
    return result


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    """``PASSED [guests: qemu]`` in verbose output."""
    runtime = dict(report.user_properties).get(GUEST_RUNTIME) if report.when == "call" else None
    if runtime is None or hasattr(report, "wasxfail") or report.outcome not in ("passed", "failed"):
        return None
    letter, colour = (".", "green") if report.passed else ("F", "red")
    return report.outcome, letter, (f"{report.outcome.upper()} [guests: {runtime}]", {colour: True})
