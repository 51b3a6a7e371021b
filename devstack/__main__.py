"""``python -m devstack up|run|import|status|down|pools|fleet``: the local Azure and Airflow for the README's main
job (and its import of an on-premises disk), the factory's pools, and fleet rebuilds."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from devstack.main_job import ROOT, STOP_COMMAND, MainJob


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    p.add_argument("command", choices=["up", "run", "import", "status", "down", "pools", "fleet", "compose-env"])
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(env("LOCAL_AZURE_STATE_DIR", str(ROOT / ".local-azure"))),
        help="the local Azure's state dir (default .local-azure)",
    )
    p.add_argument("--azure-port", type=int, default=int(env("LOCAL_AZURE_PORT", "8443")))
    p.add_argument(
        "--time-factor",
        type=float,
        default=float(env("LOCAL_AZURE_TIME_FACTOR", "0.05")),
        help="scale Azure's durations (1 = as long as Azure, 0 = instant)",
    )
    p.add_argument("--airflow-home", type=Path, default=Path(env("IMAGE_FACTORY_AIRFLOW_HOME", str(ROOT / ".airflow"))))
    p.add_argument("--airflow-port", type=int, default=int(env("IMAGE_FACTORY_AIRFLOW_PORT", "8080")))
    p.add_argument("--export", type=Path, help="pools: write them for `airflow pools import` instead of creating them")
    p.add_argument("--rebuild", metavar="REASON", help="fleet: start a fleet rebuild (unpauses the image DAGs) first")
    p.add_argument("--images", nargs="+", help="fleet --rebuild: only these images (default: all)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    job = MainJob(
        state_dir=args.state_dir,
        airflow_home=args.airflow_home,
        azure_port=args.azure_port,
        airflow_port=args.airflow_port,
        time_factor=args.time_factor,
        linux_runtime=os.environ.get("LOCAL_AZURE_LINUX_RUNTIME", "qemu"),
    )
    if args.command == "compose-env":  # secrets for docker-compose.yaml: python -m devstack compose-env > .env
        from devstack.compose import env_file_text, fresh_env

        print(env_file_text(fresh_env()), end="")
        return 0
    if args.command == "run":
        return job.run()
    if args.command == "import":
        return job.run_import()
    if args.command == "up":
        stack = job.up()
        print(f"Airflow UI: {stack.url}  (user admin, password {stack.password()}); stop with: {STOP_COMMAND}")
        return 0
    if args.command == "status":
        return show_status(job)
    if args.command in ("pools", "fleet"):
        return fleet_command(job, args)
    result = job.down()
    print(
        f"Stopped Airflow (PIDs {', '.join(map(str, result['airflow'].values())) or 'none recorded'}) and the "
        f"local Azure (PID {result['local_azure'] or 'none recorded'}); QEMU guests it had: "
        f"{', '.join(map(str, result['guests'])) or 'none'}"
        + (f", killed after it: {result['guests_killed']}" if result["guests_killed"] else "")
    )
    if result["still_running"]:
        print(f"still running: {result['still_running']}", file=sys.stderr)
        return 1
    return 0


def fleet_command(job: MainJob, args: argparse.Namespace) -> int:
    """``pools``: create or update the factory's pools; ``fleet``: what runs and waits (optionally rebuild first)."""
    import json

    from devstack import fleet

    include = fleet.include_dir()
    if args.command == "pools" and args.export:
        args.export.write_text(json.dumps(fleet.pool_file(fleet.factory_pools(include)), indent=2) + "\n")
        print(f"Wrote {args.export}: load it with `airflow pools import {args.export}`")
        return 0
    stack = job.stack()
    if not job.airflow_pids():
        print("Airflow is not running here: start it with ./factory run (or python -m devstack up)", file=sys.stderr)
        return 3
    token = stack.token()
    if args.command == "pools":
        for pool in stack.ensure_pools():
            print(f"{pool['name']}: {pool['slots']} slots ({pool['action']})")
        return 0
    if args.rebuild:
        run_id = fleet.rebuild(stack, token, args.rebuild, args.images)
        print(f"==> Started {fleet.FLEET_DAG_ID} run {run_id}: {stack.url}/dags/{fleet.FLEET_DAG_ID}")
    print(fleet.render(fleet.status(stack, token, include)))
    return 0


def show_status(job: MainJob) -> int:
    """One line per part; exit 0 only when both the local Azure and every Airflow component run."""
    status = job.status()
    azure, airflow = status["local_azure"], status["airflow"]
    if azure:
        health = azure["health"] or {}
        print(
            f"local Azure: running, PID {azure['pid']}, https://127.0.0.1:{azure['port']} "
            f"({'healthy' if health else 'not answering'}, {health.get('linuxGuestRuntime', '?')} Linux guests)"
        )
    else:
        print("local Azure: not running")
    running = {n: airflow["pids"][n] for n in airflow["running"]}
    if running:
        print(
            f"Airflow: running, {airflow['url']}, PIDs {', '.join(f'{n} {p}' for n, p in running.items())}"
            + (f"; stopped: {', '.join(airflow['stopped'])}" if airflow["stopped"] else "")
        )
    else:
        print("Airflow: not running")
    print(f"QEMU guests: {', '.join(map(str, status['guests'])) or 'none'}")
    return 0 if azure and running and not airflow["stopped"] else 3


if __name__ == "__main__":
    sys.exit(main())
