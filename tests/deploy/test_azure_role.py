"""The factory's custom Azure role (deploy/azure/image-factory-role.json) fits the pipeline exactly.

Every DAG that calls ARM runs with ``dag.test()`` against the session local Azure (simulated guests):
each shipped image definition's golden DAG (Linux generalized, specialized, with a managed image,
Windows, and the disk import), a second build of debian12-web, ``revoke_image_version``,
``retain_image_versions`` (debian12-web with ``retention.keep: 1``, so it deletes a version),
``watch_image_sources`` and ``sweep_build_resources`` with a leftover group. ``announce_published_images``
and ``fleet_rebuild`` make no ARM call of their own. Every ARM request they made, read from the
emulator's request log, is mapped to the RBAC action it needs (devstack/rbac.py); the role must allow
each of them and grant nothing none of them used.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack.rbac import ROLE_KEYS, Role, UnmappedRequest, group_delete_actions, linked_actions, required_action
from image_factory.pipeline.build import SECRET_VARIABLE
from tests.dags.conftest import TEST_SECRET, task_states, xcom
from tests.localazure import LocalAzure

ROOT = Path(__file__).resolve().parents[2]
ROLE_FILE = ROOT / "deploy" / "azure" / "image-factory-role.json"
PLACEHOLDER_SCOPE = "/subscriptions/00000000-0000-0000-0000-000000000000"
CONN = "image_factory_azure"
WEB = "debian12-web"


def load_role() -> dict[str, Any]:
    return dict(json.loads(ROLE_FILE.read_text()))


# the role file, as `az role definition create --role-definition @file` takes it ------------------------
def test_the_role_file_is_a_well_formed_custom_role_without_wildcards() -> None:
    role = load_role()
    assert list(role) == list(ROLE_KEYS), "keys: exactly az's, in its order"
    assert isinstance(role["Name"], str) and role["Name"].strip()
    assert role["IsCustom"] is True and isinstance(role["Description"], str) and role["Description"].strip()
    for key in ("Actions", "NotActions", "DataActions", "NotDataActions", "AssignableScopes"):
        assert isinstance(role[key], list) and all(isinstance(v, str) and v for v in role[key]), key
    actions = role["Actions"]
    assert actions, "a role that grants nothing"
    assert len({a.lower() for a in actions}) == len(actions), "duplicate actions (ARM compares case-insensitively)"
    assert actions == sorted(actions, key=str.lower), "actions not sorted"
    assert not [a for a in actions if "*" in a], "wildcards grant more than the pipeline uses"
    assert all(a.count("/") >= 2 and a.split("/")[0].startswith("Microsoft.") for a in actions), actions
    assert role["NotActions"] == [] and role["DataActions"] == [] and role["NotDataActions"] == []
    assert role["AssignableScopes"] == [PLACEHOLDER_SCOPE]


# the pipeline's requests ---------------------------------------------------------------------------------
class RequestRecorder:
    """Reads the local Azure's request log with ``since`` while a DAG runs, every ``every`` seconds, so its
    5000-entry bound never drops a request; what happens between recordings (test setup) is not kept."""

    def __init__(self, emu: LocalAzure, every: float = 1.0) -> None:
        self.emu = emu
        self.every = every
        self.entries: list[dict[str, Any]] = []
        self.gaps: list[str] = []
        self._seq = 0
        self._lock = threading.Lock()

    def _read(self, label: str) -> None:
        with self._lock:
            new = self.emu.ops("GET", "requests", since=self._seq)["entries"]
            if new and new[0]["seq"] != self._seq + 1:
                self.gaps.append(f"{label}: requests {self._seq + 1}..{new[0]['seq'] - 1} fell out of the log")
            for entry in new:
                self.entries.append({**entry, "dag": label})
            if new:
                self._seq = new[-1]["seq"]

    @contextmanager
    def recording(self, label: str) -> Iterator[None]:
        with self._lock:
            self._seq = int(self.emu.ops("GET", "requests")["total"])
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(self.every):
                self._read(label)

        poller = threading.Thread(target=poll, name=f"request-log-{label}", daemon=True)
        poller.start()
        try:
            yield
        finally:
            stop.set()
            poller.join()
            self._read(label)


def succeeded(run: Any) -> None:
    states = task_states(run)
    assert run.state == "success" and all(s in ("success", "skipped") for s in states.values()), (run.dag_id, states)


def keep_one(tmp: Path) -> Path:
    """debian12-web as shipped, but retention keeps one version: retention then has one to delete."""
    folder = tmp / "keep-one"
    folder.mkdir()
    text = (ROOT / "include" / "images" / f"{WEB}.yaml").read_text()
    (folder / f"{WEB}.yaml").write_text(text + "retention: {keep: 1}\n")
    return folder


def leftover_group(image: str) -> str:
    """A build group of a run this Airflow never knew, past its expiry: the sweeper's to delete."""
    from image_factory.hooks.resources import ResourceGroupHook
    from image_factory.naming import RunNames, run_tags

    run_id = f"manual__elsewhere-{uuid.uuid4().hex[:8]}"
    name = RunNames.for_run(image, f"golden_{image}", run_id).resource_group
    created = datetime.now(UTC) - timedelta(days=2)
    ResourceGroupHook(CONN).ensure_resource_group(name, "westeurope", run_tags(image, run_id, created, timedelta(hours=12)))
    return name


def run_every_arm_dag(recorder: RequestRecorder, tmp: Path) -> None:
    from image_factory.dag_factory import image_dags
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.hooks.resources import ResourceGroupHook
    from image_factory.pipeline.build import load_definition
    from image_factory.retention_dag import retention_dag
    from image_factory.revocation_dag import revocation_dag
    from image_factory.sweeper_dag import sweeper_dag
    from image_factory.watch_dag import watcher_dag
    from tests.plugins.image_factory.disks.builders import build_disk

    disk = load_definition("debian12-imported").source.disk or {}
    build_disk(tmp / "imports" / str(disk["path"]), size_mib=48, fmt="qcow2")
    images = image_dags()
    for dag_id in sorted(images):
        with recorder.recording(dag_id):
            run = images[dag_id].test()
        succeeded(run)
        if dag_id == f"golden_{WEB}":
            first = xcom(run, "plan")["version"]
    with recorder.recording(f"golden_{WEB} (second build)"):
        again = images[f"golden_{WEB}"].test()
    succeeded(again)

    web = load_definition(WEB)
    with recorder.recording("revoke_image_version"):
        run = revocation_dag().test(run_conf={"image": WEB, "version": first, "reason": "least-privilege check"})
    succeeded(run)
    with recorder.recording("retain_image_versions"):
        run = retention_dag(folder=keep_one(tmp)).test()
    succeeded(run)
    gallery = GalleryHook(CONN)
    assert gallery.version_details(web.gallery_resource_group, web.gallery_name, web.definition, first) is None, \
        "retention deleted no version: its delete actions went unexercised"

    with recorder.recording("watch_image_sources"):
        run = watcher_dag().test()
    succeeded(run)

    group = leftover_group(WEB)
    with recorder.recording("sweep_build_resources"):
        run = sweeper_dag().test()
    succeeded(run)
    assert not ResourceGroupHook(CONN).resource_group_exists(group), "the sweeper left the leftover group"


@pytest.fixture(scope="module")
def pipeline_requests(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Every request of every ARM-calling DAG run, each with its DAG and the RBAC action it needs.

    A local Azure of its own: on one other tests used, the gallery and its definitions would already
    exist, and the writes that create them would never be seen.
    """
    request.getfixturevalue("airflow_db")
    tmp = tmp_path_factory.mktemp("role")
    for folder in ("imports", "work"):
        (tmp / folder).mkdir()
    emu = LocalAzure(tmp / "azure", env={"LOCAL_AZURE_LINUX_RUNTIME": "simulated"}).start()
    try:
        recorder = RequestRecorder(emu)
        with pytest.MonkeyPatch.context() as env:
            env.setenv(f"AIRFLOW_CONN_{CONN.upper()}", emu.connection_uri_env())
            env.setenv(f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}", TEST_SECRET)
            env.setenv("IMAGE_FACTORY_LINEAGE_URL", f"sqlite:///{tmp / 'lineage.db'}")
            env.setenv("IMAGE_FACTORY_IMPORT_DIR", str(tmp / "imports"))
            env.setenv("IMAGE_FACTORY_WORK_DIR", str(tmp / "work"))
            run_every_arm_dag(recorder, tmp)
    finally:
        emu.stop(timeout=60)
    assert not recorder.gaps, recorder.gaps
    for entry in recorder.entries:
        try:
            entry["action"] = required_action(entry["method"], entry["path"])
        except UnmappedRequest as exc:
            entry["action"], entry["unmapped"] = None, str(exc)
    return recorder.entries


def described(entry: dict[str, Any]) -> str:
    return f"[{entry['dag']}] {entry['method']} {entry['path']} -> {entry['status']}: {entry['action']}"


@pytest.mark.slow
@pytest.mark.guests("simulated")
@pytest.mark.timeout(2400)
def test_the_role_allows_every_arm_request_the_pipeline_makes(pipeline_requests: list[dict[str, Any]]) -> None:
    unmapped = [f"[{e['dag']}] {e['unmapped']}" for e in pipeline_requests if e.get("unmapped")]
    assert not unmapped, "requests with no known RBAC action:\n" + "\n".join(unmapped)
    arm = [e for e in pipeline_requests if e["action"]]
    assert {e["dag"] for e in arm} >= {"golden_debian12-web", "golden_debian12-imported", "retain_image_versions",
                                       "revoke_image_version", "watch_image_sources", "sweep_build_resources"}
    role = Role.from_definition(load_role())
    refused = sorted({described(e) for e in arm if not role.allows(e["action"])})
    refused += sorted({f"[{e['dag']}] {linked} (linked check of {e['action']})" for e in arm
                       for linked in linked_actions(e["action"]) if not role.allows(linked)})
    deletes = group_delete_actions((e["method"], e["path"]) for e in arm)
    refused += sorted(f"[resource group delete] {a} (on a resource in a deleted group)" for a in deletes
                      if not role.allows(a))
    assert not refused, f"{len(refused)} request(s) the role would refuse (403 AuthorizationFailed):\n" + "\n".join(refused)


@pytest.mark.slow
@pytest.mark.guests("simulated")
@pytest.mark.timeout(2400)
def test_the_role_grants_no_action_the_pipeline_never_used(pipeline_requests: list[dict[str, Any]]) -> None:
    performed = {e["action"] for e in pipeline_requests if e["action"]}
    performed |= {linked for action in performed for linked in linked_actions(action)}
    performed |= group_delete_actions((e["method"], e["path"]) for e in pipeline_requests)
    unused = Role.from_definition(load_role()).unused(performed)
    assert not unused, "granted but never used by any run:\n" + "\n".join(unused)
