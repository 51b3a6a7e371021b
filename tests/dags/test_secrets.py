"""The run's private key and Windows password never reach logs, XCom, rendered fields or the metadata DB."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from image_factory.credentials import ssh_key_pair, windows_password
from tests.airflow_env import HOME
from tests.dags.conftest import TEST_SECRET, task_states
from tests.localazure import LocalAzure

pytestmark = [pytest.mark.guests("simulated"), pytest.mark.timeout(900)]


def secrets_of(run: Any) -> dict[str, str]:
    key = f"{run.dag_id}/{run.run_id}"
    out: dict[str, str] = {}
    for role in ("build", "smoke"):
        pair = ssh_key_pair(TEST_SECRET, key, role)
        body = "".join(pair.private_openssh.strip().splitlines()[1:-1])
        out[f"{role} private key"] = body[20:80]  # any stretch of the key material
        out[f"{role} password"] = windows_password(TEST_SECRET, key, role)
    out["build secret"] = TEST_SECRET
    return out


def database_text() -> str:
    """Every text and blob cell of the test metadata DB."""
    con = sqlite3.connect(Path(HOME) / "airflow.db")
    try:
        chunks: list[str] = []
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):  # table names come from sqlite itself
                for cell in row:
                    if isinstance(cell, bytes):
                        chunks.append(cell.decode("utf-8", "replace"))
                    elif isinstance(cell, str):
                        chunks.append(cell)
        return "\n".join(chunks)
    finally:
        con.close()


@pytest.mark.parametrize("image", ["debian12-web", "windows2022-base"])
def test_credentials_never_leave_the_task(factory_env: LocalAzure, image: str, capfd: pytest.CaptureFixture[str]) -> None:
    from image_factory.dag_factory import image_dags

    run = image_dags()[f"golden_{image}"].test()
    assert all(s == "success" for s in task_states(run).values())
    logs = "".join(capfd.readouterr())
    db = database_text()
    assert run.run_id in db  # the run really is in the DB we search
    for name, value in secrets_of(run).items():
        assert value not in logs, f"the {name} appears in the task logs"
        assert value not in db, f"the {name} appears in the metadata DB (XCom, rendered fields, logs, ...)"
