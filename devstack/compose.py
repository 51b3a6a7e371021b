"""docker-compose.yaml as data: its secrets file (``.env``) and the Airflow topology it declares.

``python -m devstack compose-env`` prints a fresh ``.env`` (Fernet key, JWT and API secrets, the
build secret, the UID the containers run as), so no secret is ever committed or shared between
deployments. The Celery deployment test reads the Airflow services from here, so the processes it
starts are the ones the compose file declares.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
SECRET_NAMES = ("FERNET_KEY", "JWT_SECRET", "API_SECRET_KEY", "BUILD_SECRET")


def fresh_env() -> dict[str, str]:
    """New secrets for one deployment (devstack.airflow's, by their .env names), and the UID its files on bind
    mounts belong to."""
    from devstack.airflow import new_keys

    return {**{key.upper(): value for key, value in new_keys().items()}, "AIRFLOW_UID": str(os.getuid())}


def env_file_text(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file with its anchors and merge keys resolved."""
    return dict(yaml.safe_load(path.read_text()))


def airflow_components(services: dict[str, Any]) -> dict[str, str]:
    """``{service: airflow sub-command}`` for the long-running Airflow services (those started by the image's
    entrypoint with an Airflow command; the init job and the local Azure are not)."""
    found = {}
    for name, service in services.items():
        command = service.get("command")
        if isinstance(command, str) and name.startswith("airflow-") and "entrypoint" not in service:
            found[name] = command
    return found
