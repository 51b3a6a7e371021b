"""docker-compose.yaml: valid for Compose, Airflow's official 3.3 topology, and wired to the local Azure.

No Docker engine is needed: Debian's ``docker-compose config`` validates the file against the Compose
schema and resolves it, and the rest is read from the resolved file. That the same Airflow settings run
a build is tests/e2e/test_celery_deployment.py's job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from devstack.compose import COMPOSE_FILE, ROOT, SECRET_NAMES, airflow_components, env_file_text, fresh_env

OFFICIAL_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer", "celery worker"}


def _compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing: ./factory install installs Debian's docker-compose")
        pytest.skip("docker-compose is not installed (./factory install installs it)")
    return found


def _config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    return subprocess.run(
        [_compose_binary(), "--project-directory", str(ROOT), "--env-file", str(tmp_path / ".env"), "-f",
         str(COMPOSE_FILE), "config"],
        env={**clean, **env}, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as Compose resolves it, with a .env from ``python -m devstack compose-env``."""
    tmp = tmp_path_factory.mktemp("compose")
    made = subprocess.run([os.environ.get("PYTHON", "python"), "-m", "devstack", "compose-env"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"})
    (tmp / ".env").write_text(made.stdout)
    done = _config(tmp, {})
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


def test_compose_validates_the_file_with_the_secrets_from_compose_env(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] and "${" not in env["AIRFLOW__CORE__FERNET_KEY"]
    assert len(env["AIRFLOW_VAR_IMAGE_FACTORY_BUILD_SECRET"]) == 64


def test_without_secrets_compose_refuses_the_file_and_says_how_to_make_them(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("")
    done = _config(tmp_path, {})
    assert done.returncode != 0 and "python -m devstack compose-env > .env" in done.stderr, done.stderr


def test_compose_env_makes_fresh_usable_secrets() -> None:
    from cryptography.fernet import Fernet

    first, second = fresh_env(), fresh_env()
    assert set(SECRET_NAMES) <= set(first) and all(first[k] != second[k] for k in SECRET_NAMES)
    assert Fernet(first["FERNET_KEY"].encode()).decrypt(Fernet(first["FERNET_KEY"].encode()).encrypt(b"x")) == b"x"
    assert env_file_text({"A": "1", "B": "2"}) == "A=1\nB=2\n"


def _state_dir(services: dict[str, Any]) -> str:
    """Where the local-azure service keeps its state (its TLS files and Azurite's accounts file)."""
    return str(services["local-azure"]["command"].split("--state-dir ")[1].split()[0])


def _mounts(service: dict[str, Any]) -> set[tuple[str, str]]:
    """``(source, target)`` of a service's volumes (Compose prints ``source:target[:mode]`` or the long form)."""
    found = set()
    for v in service.get("volumes", []):
        found.add((v["source"], v["target"]) if isinstance(v, dict) else tuple(v.split(":")[:2]))
    return found


def test_the_airflow_services_are_the_official_celery_topology(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(airflow_components(services).values()) == OFFICIAL_COMPONENTS
    assert {"postgres", "redis", "airflow-init", "local-azure", "azurite"} <= set(services)
    for name in airflow_components(services):
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).hostname == "postgres"
        assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).hostname == "redis"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    init = " ".join(services["airflow-init"]["command"])
    assert "airflow db migrate" in init and "airflow pools import" in init
    for name, service in services.items():  # what a service waits for exists, and the init job gates Airflow
        for needed in service.get("depends_on", {}):
            assert needed in services, (name, needed)
    for name in airflow_components(services):
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_the_components_that_reach_guests_share_the_local_azures_network(resolved: dict[str, Any]) -> None:
    """Guests listen on loopback addresses inside local-azure's namespace: the worker (SSH/WinRM) and the triggerer
    (boot waits) must be in it; the rest are not, so Airflow's own ports do not collide."""
    services = resolved["services"]
    shared = {n for n, s in services.items() if s.get("network_mode") == "service:local-azure"}
    assert shared == {"airflow-worker", "airflow-triggerer"}


def test_the_factory_connection_points_at_the_local_azure_service(resolved: dict[str, Any]) -> None:
    from emulator.core.context import DEFAULT_SUBSCRIPTION, DEFAULT_TENANT

    services = resolved["services"]
    conn = json.loads(services["airflow-worker"]["environment"]["AIRFLOW_CONN_IMAGE_FACTORY_AZURE"])
    endpoint = urlsplit(conn["extra"]["endpoint"])
    azure = services["local-azure"]
    assert endpoint.hostname == "local-azure" == azure["hostname"]
    assert endpoint.hostname in azure["environment"]["LOCAL_AZURE_TLS_NAMES"].split(",")  # its certificate names it
    assert f"--port {endpoint.port}" in azure["command"] and "--host 0.0.0.0" in azure["command"]
    state_dir = _state_dir(services)
    assert conn["extra"]["ca_bundle"] == f"{state_dir}/tls/ca.pem"
    assert ("local-azure", state_dir) in _mounts(services["airflow-worker"])  # the CA the worker trusts is the one local-azure writes
    assert (conn["extra"]["subscriptionId"], conn["extra"]["tenantId"]) == (DEFAULT_SUBSCRIPTION, DEFAULT_TENANT)


def test_azurite_is_its_own_service_on_the_local_azures_accounts_file(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    url = urlsplit(services["local-azure"]["environment"]["LOCAL_AZURE_AZURITE_URL"])
    azurite = services["azurite"]
    assert url.hostname == "azurite" and f"--blobPort {url.port}" in azurite["command"]
    assert "launch.js" in azurite["command"]
    accounts = azurite["environment"]["LOCAL_AZURE_ACCOUNTS_FILE"]
    state_dir = _state_dir(services)
    assert accounts == f"{state_dir}/azurite/accounts"  # where the emulator writes it (emulator.storage.azurite)
    assert ("local-azure", state_dir) in _mounts(azurite)


def test_the_image_carries_what_the_services_run() -> None:
    dockerfile = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for folder in ("dags", "plugins", "include", "emulator", "devstack"):
        assert f"COPY --chown=airflow:root {folder}/ {folder}/" in dockerfile, folder
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile and "npm ci" in dockerfile
    assert (ROOT / "deploy" / "docker" / "postgres-init.sql").read_text().count("CREATE DATABASE image_factory_lineage")
