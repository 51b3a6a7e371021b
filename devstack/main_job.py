"""The README's main job: the local Azure and Airflow left running, one golden-image run watched to the end.

``up`` starts what is not already running (found again by pid files plus a health check, so a second
``./factory run`` reuses both); ``run`` triggers the Linux generalized image's DAG through Airflow's
REST API, prints every task's state changes and the replication progress per region as they happen,
then the run's summary; ``down`` stops everything by the recorded PIDs; ``status`` says what runs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devstack.airflow import AirflowStack, stop_pids_from
from devstack.localazure import ROOT, DetachedLocalAzure, cmdline, connection_json, pid_alive

DAG_ID = "golden_debian12-web"
REASON = "./factory run"
IMPORT_DAG_ID = "golden_debian12-imported"
IMPORT_DISK = "debian12-onprem.qcow2"  # source.disk.path of include/images/debian12-imported.yaml
STOP_COMMAND = "./factory stop"
STAGE_ORDER = (
    "inspect_disk",
    "prepare_disk",
    "build_environment",
    "upload",
    "provision_vm",
    "wait_for_guest",
    "check_changes",
    "customise",
    "generalize",
    "wait_for_stop",
    "deallocate",
    "capture",
    "replicate",
    "smoke_test",
    "promote",
)
FINISHED = {"success", "failed"}

Say = Callable[[str], None]


def _print(text: str) -> None:
    print(text, flush=True)


@dataclass
class MainJob:
    """Where the local deployment lives; defaults are the README's, tests pass temp dirs and free ports."""

    state_dir: Path = ROOT / ".local-azure"
    airflow_home: Path = ROOT / ".airflow"
    azure_port: int = 8443
    airflow_port: int = 8080
    time_factor: float = 0.05
    linux_runtime: str = "qemu"
    say: Say = field(default=_print)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir).resolve()
        self.airflow_home = Path(self.airflow_home).resolve()
        self.azure = DetachedLocalAzure(
            self.state_dir, self.azure_port, self.time_factor, {"LOCAL_AZURE_LINUX_RUNTIME": self.linux_runtime}
        )

    def stack(self) -> AirflowStack:
        connection = connection_json(self.state_dir) if (self.state_dir / "endpoint.json").exists() else ""
        return AirflowStack(self.airflow_home, port=self.airflow_port, azure_connection=connection)

    # up / status / down -----------------------------------------------------------------------------
    def up(self) -> AirflowStack:
        found, started = self.azure.ensure_started()
        runtime = (found["health"] or {}).get("linuxGuestRuntime", "?")
        verb = "Started" if started else "Reusing"
        self.say(
            f"==> {verb} the local Azure on {self.azure.endpoint} (PID {found['pid']}, {runtime} Linux guests, "
            f"state in {self.state_dir})"
        )
        if not started and runtime != self.linux_runtime:
            self.say(f"    note: it runs {runtime} guests, not {self.linux_runtime}; `{STOP_COMMAND}` first to switch")
        stack = self.stack()
        pids = self.airflow_pids()
        if pids and all(pid_alive(p) for p in pids.values()) and self._airflow_healthy(stack):
            self.say(f"==> Reusing Airflow on {stack.url} (PIDs {', '.join(map(str, pids.values()))})")
            self.say_pools(stack.ensure_pools())  # include/fleet.yaml may have changed since it started
            return stack
        if pids:  # some component died: stop what is left of it, start all afresh
            stack.stop()
        self.say(
            f"==> Starting Airflow (api-server, scheduler, dag-processor, triggerer) on {stack.url}, "
            f"home {self.airflow_home}"
        )
        stack.start()
        self.say(f"    PIDs {', '.join(f'{n} {p.pid}' for n, p in stack.procs.items())}")
        self.say_pools(stack.pools)
        return stack

    def say_pools(self, pools: list[dict[str, Any]]) -> None:
        if pools:
            self.say("    pools (include/fleet.yaml): " + ", ".join(f"{p['name']} {p['slots']}" for p in pools))

    def airflow_pids(self) -> dict[str, int]:
        """The recorded components whose PIDs still run an airflow command."""
        pids = stop_pids_from(self.airflow_home / "pids.json")
        return {n: p for n, p in pids.items() if pid_alive(p) and any("airflow" in a for a in cmdline(p))}

    def _airflow_healthy(self, stack: AirflowStack) -> bool:
        try:
            stack.wait_healthy(20)
            return True
        except RuntimeError:
            return False

    def status(self) -> dict[str, Any]:
        emulator = self.azure.status()
        recorded = stop_pids_from(self.airflow_home / "pids.json")
        alive = self.airflow_pids()
        return {
            "local_azure": emulator,
            "airflow": {
                "url": f"http://127.0.0.1:{self.airflow_port}",
                "pids": recorded,
                "running": sorted(alive),
                "stopped": sorted(set(recorded) - set(alive)),
            },
            "guests": self.azure.guest_pids(),
        }

    def down(self) -> dict[str, Any]:
        """Stop Airflow's components, then the local Azure (which powers its guests off), all by recorded PID."""
        recorded = stop_pids_from(self.airflow_home / "pids.json")
        AirflowStack(self.airflow_home, port=self.airflow_port).stop()
        emulator = self.azure.stop()
        left = [
            p
            for p in [*recorded.values(), *([emulator["pid"]] if emulator["pid"] else []), *emulator["guests"]]
            if pid_alive(p)
        ]
        return {
            "airflow": recorded,
            "local_azure": emulator["pid"],
            "guests": emulator["guests"],
            "guests_killed": emulator["guests_killed"],
            "still_running": left,
        }

    # run ---------------------------------------------------------------------------------------------
    def run_import(self, poll: float = 2.0) -> int:
        """The import pipeline on a real on-premises-style disk: the Debian base image exported as qcow2 into
        the import folder (once), then the import DAG, followed like ``run``."""
        disk = self.airflow_home / "image-factory" / "imports" / IMPORT_DISK
        if not disk.exists():
            from emulator.guests.qemu.image import build_base_image, export_disk

            self.say(f"==> Exporting the Debian base image as an on-premises disk to import: {disk}")
            export_disk(build_base_image(log=self.say), disk, "qcow2")
        return self.run(IMPORT_DAG_ID, poll, reason="./factory import-demo")

    def run(self, dag_id: str = DAG_ID, poll: float = 2.0, reason: str = REASON) -> int:
        stack = self.up()
        token = stack.token()
        stack.wait_for_dag(dag_id, token)
        run_id = stack.trigger(dag_id, {"reason": reason}, token)
        self.say(f"==> Triggered {dag_id} (run {run_id}); following it (Ctrl-C stops following, not the run)")
        watch = RunWatch(stack, dag_id, run_id, self.say, self._replication_reader())
        try:
            state = watch.follow(poll)
        except KeyboardInterrupt:
            self.say(f"\n==> Stopped following; the run goes on in Airflow: {stack.url}/dags/{dag_id}")
            self.say(format_where(stack))
            return 130
        token = stack.token()
        if state == "success":
            report = stack.xcom(dag_id, run_id, "report", token)
            self.say(format_summary(report, watch.elapsed()))
        else:
            self.say(format_failure(stack, dag_id, run_id, token))
        self.say(format_where(stack))
        return 0 if state == "success" else 1

    def _replication_reader(self) -> Callable[[str], dict[str, Any] | None]:
        """Replication status of a gallery image version id, read through the factory's own GalleryHook."""
        env = self.stack().env()
        hook: list[Any] = []

        def read(version_id: str) -> dict[str, Any] | None:
            if not hook:
                for key in (
                    "AIRFLOW_HOME",
                    "AIRFLOW__CORE__FERNET_KEY",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                    "AIRFLOW__CORE__LOAD_EXAMPLES",
                    "AIRFLOW_CONN_IMAGE_FACTORY_AZURE",
                ):
                    if key in env:
                        os.environ[key] = env[key]
                sys.path.insert(0, str(ROOT / "plugins"))
                from image_factory.hooks.gallery import GalleryHook

                logging.getLogger("azure").setLevel(logging.WARNING)  # the SDK logs every request at INFO
                hook.append(GalleryHook("image_factory_azure"))
            rg, gallery, definition, version = version_parts(version_id)
            status: dict[str, Any] | None = hook[0].version_status(rg, gallery, definition, version)
            return status

        return read


def version_parts(version_id: str) -> tuple[str, str, str, str]:
    """(resource group, gallery, image definition, version) from a gallery image version's ARM id."""
    parts = version_id.strip("/").split("/")
    lower = [p.lower() for p in parts]

    def after(key: str) -> str:
        return parts[lower.index(key) + 1]

    return after("resourcegroups"), after("galleries"), after("images"), after("versions")


class RunWatch:
    """Prints each task instance's state when it changes, and replication progress while ``replicate`` waits."""

    def __init__(
        self,
        stack: AirflowStack,
        dag_id: str,
        run_id: str,
        say: Say,
        replication: Callable[[str], dict[str, Any] | None],
    ) -> None:
        self.stack, self.dag_id, self.run_id, self.say = stack, dag_id, run_id, say
        self.replication = replication
        self.started = time.monotonic()
        self.seen: dict[tuple[str, int], tuple[str, int]] = {}
        self.regions: dict[str, tuple[str, Any]] = {}
        self.version_id: str | None = None
        self.progress_unavailable = False
        self.replication_closed = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def follow(self, poll: float, max_failed_polls: int = 30) -> str:
        """Poll until the run finishes; the run's final state. A few failed polls in a row are tolerated."""
        token, token_at, failures = self.stack.token(), time.monotonic(), 0
        while True:
            try:
                if time.monotonic() - token_at > 600:  # tokens expire; renew well before
                    token, token_at = self.stack.token(), time.monotonic()
                state = self._poll(token)
                failures = 0
            except requests.RequestException as exc:
                failures += 1
                if failures >= max_failed_polls:
                    raise RuntimeError(f"Airflow's API did not answer {failures} polls in a row: {exc}") from exc
                state = None
            if state in FINISHED:
                self.say(f"[{self.elapsed():7.1f} s] run {state}")
                return str(state)
            time.sleep(poll)

    def _poll(self, token: str) -> str:
        state = self.stack.run_state(self.dag_id, self.run_id, token)  # before the tasks: none is missed at the end
        tis = self.stack.task_instances(self.dag_id, self.run_id, token)
        self._note_tasks(tis)
        self._note_replication(tis, token)
        return state

    def _note_tasks(self, tis: list[dict[str, Any]]) -> None:
        for ti in sorted(tis, key=lambda t: (t.get("start_date") or "~", t["task_id"], t.get("map_index", -1))):
            key = (ti["task_id"], int(ti.get("map_index", -1)))
            now = (str(ti.get("state")), int(ti.get("try_number") or 0))
            if ti.get("state") is None or self.seen.get(key) == now:
                continue
            self.seen[key] = now
            name = ti["task_id"] + (f"[{ti.get('rendered_map_index') or key[1]}]" if key[1] >= 0 else "")
            extra = f" (try {now[1]})" if now[1] > 1 else ""
            if now[0] in ("success", "failed") and ti.get("duration") is not None:
                extra += f" in {float(ti['duration']):.1f} s"
            self.say(f"[{self.elapsed():7.1f} s] {name:<22} {now[0]}{extra}")

    def _note_replication(self, tis: list[dict[str, Any]], token: str) -> None:
        replicate = next((t for t in tis if t["task_id"] == "replicate"), None)
        state = None if replicate is None else replicate.get("state")
        # Once more after it succeeds: a replication shorter than a poll still shows where each region ended.
        if state not in ("running", "deferred", "queued", "scheduled", "up_for_reschedule", "success"):
            return
        if state == "success":
            if self.replication_closed:
                return
            self.replication_closed = True
        if self.version_id is None:
            capture = self.stack.xcom(self.dag_id, self.run_id, "capture", token)
            self.version_id = (capture or {}).get("version_id")
            if not self.version_id:
                return
        try:
            status = self.replication(self.version_id)
        except Exception as exc:  # progress is a courtesy: the run goes on, and its summary is authoritative
            if not self.progress_unavailable:
                self.progress_unavailable = True
                self.say(f"[{self.elapsed():7.1f} s]   replication progress unavailable: {exc}")
            return
        for region, r in sorted(((status or {}).get("regions") or {}).items()):
            now = (str(r.get("state")), r.get("progress"))
            if self.regions.get(region) != now:
                self.regions[region] = now
                self.say(f"[{self.elapsed():7.1f} s]   replication to {region:<12} {now[0]} {now[1]}%")


def format_summary(report: dict[str, Any], total: float) -> str:
    lines = [
        "",
        "==> Golden image published",
        f"Version:  {report.get('version')}",
        f"Id:       {report.get('version_id')}",
        f"Source:   {source_text(report.get('source'))}",
        "Regions:",
    ]
    for region, r in sorted((report.get("regions") or {}).items()):
        seconds = f" after {r['seconds']} s" if r.get("seconds") is not None else ""
        lines.append(f"  {region:<14} {r.get('state')} {r.get('progress')}%{seconds}")
    lines.append("Smoke tests:")
    for region, s in sorted((report.get("smoke") or {}).items()):
        lines.append(f"  {region}: {'PASS' if s.get('passed') else 'FAIL'}")
        for check in s.get("checks") or []:
            detail = f": {' / '.join(str(check['detail']).splitlines())}" if check.get("detail") else ""
            lines.append(f"    {'PASS' if check.get('passed') else 'FAIL'} {check.get('name')}{detail}")
    lines.append("Stage timings:")
    stages = report.get("stage_seconds") or {}
    for stage in [*[s for s in STAGE_ORDER if s in stages], *sorted(set(stages) - set(STAGE_ORDER))]:
        lines.append(f"  {stage:<18} {float(stages[stage]):7.1f} s")
    lines.append(f"Total:    {total:.1f} s (trigger to finish)")
    lines.append(f"Lineage:  ./factory lineage show {report.get('image')}@{report.get('version')}  "
                 "(or the Airflow UI's Golden images page)")
    return "\n".join(lines)


def source_text(source: Any) -> str:
    """A Marketplace reference as URN (publisher:offer:sku:version), anything else as it is."""
    keys = ("publisher", "offer", "sku", "version")
    if isinstance(source, dict) and all(k in source for k in keys):
        return ":".join(str(source[k]) for k in keys)
    if isinstance(source, dict) and "id" in source:
        return str(source["id"])
    if isinstance(source, dict) and "disk" in source:
        return f"disk file {source['disk']} (format {source.get('format', 'auto')})"
    return str(source)


def format_failure(stack: AirflowStack, dag_id: str, run_id: str, token: str) -> str:
    """Which task failed, and the end of its log (through the REST API's log endpoint)."""
    tis = stack.task_instances(dag_id, run_id, token)
    failed = [t for t in tis if t.get("state") == "failed"] or [t for t in tis if t.get("state") == "upstream_failed"]
    lines = ["", f"==> The run failed: {', '.join(sorted({t['task_id'] for t in failed})) or 'no task failed'}"]
    for ti in failed[:2]:
        lines.append(f"--- end of the log of {ti['task_id']} (try {ti.get('try_number')}) ---")
        lines.extend(task_log_tail(stack, dag_id, run_id, ti, token))
    return "\n".join(lines)


def task_log_tail(
    stack: AirflowStack, dag_id: str, run_id: str, ti: dict[str, Any], token: str, entries: int = 15
) -> list[str]:
    """The last log entries of a task try, one line each (multi-line SDK dumps cut), with the exception in full."""
    path = f"dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{max(int(ti.get('try_number') or 1), 1)}"
    resp = stack.api("GET", path, token, params={"map_index": ti.get("map_index", -1), "full_content": True})
    if not resp.ok:
        return [f"(log unavailable: HTTP {resp.status_code})"]
    content = resp.json().get("content", [])
    lines: list[str] = []
    for entry in (content if isinstance(content, list) else [content])[-entries:]:
        lines.extend(log_entry_lines(entry))
    return lines


def log_entry_lines(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return str(entry).splitlines()
    event = str(entry.get("event", ""))
    if event.startswith("::"):  # Airflow's UI grouping markers
        return []
    first, *rest = event.splitlines() or [""]
    when = str(entry.get("timestamp", ""))[11:19]
    lines = [f"{when} {entry.get('level', '')} {entry.get('logger', '')}: {first}{' …' if rest else ''}"]
    for error in entry.get("error_detail") or []:
        if isinstance(error, dict):
            lines.append(f"    {error.get('exc_type')}: {' / '.join(str(error.get('exc_value')).splitlines())}")
    return lines


def format_where(stack: AirflowStack) -> str:
    return "\n".join(
        [
            "",
            f"Airflow UI: {stack.url}  (user admin, password {stack.password()})",
            f"Everything keeps running for you to explore; stop it all with: {STOP_COMMAND}",
        ]
    )
