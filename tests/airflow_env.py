"""Airflow's configuration for the test session, set before anything imports Airflow.

Tests get their own AIRFLOW_HOME (SQLite metadata DB, logs) in a temporary folder, the project's
dags/ and plugins/, and no example DAGs; the user's ~/airflow is never touched.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def configure() -> Path:
    home = os.environ.get("IMAGE_FACTORY_TEST_AIRFLOW_HOME")
    if not home:
        home = tempfile.mkdtemp(prefix="factory-airflow-")
        os.environ["IMAGE_FACTORY_TEST_AIRFLOW_HOME"] = home
        atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ["AIRFLOW_HOME"] = home
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
    os.environ.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", f"{home}/logs")
    return Path(home)


HOME = configure()
