"""The fleet rebuild DAG: every golden image rebuilt at once, queued by Azure's limits instead of failing.

One mapped trigger task per build region starts each image's DAG run and waits for it deferred
(in the triggerer: no worker slot). Each of those tasks holds one slot of the region's builds pool
for its image run's whole life, so a region runs at most ``builds`` image builds at a time; inside
the runs, the VM tasks queue for the region's vCPU pool. A failed image run fails its trigger task
and so the fleet run, which still waits for every other image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from image_factory import fleet as limits
from image_factory.dag_factory import START, dag_id_for
from image_factory.pipeline.build import include_dir

FLEET_DAG_ID = "fleet_rebuild"


def valid_definitions(images: Path) -> list[Any]:
    """The definitions a rebuild applies to: those that load (a broken one is its own failing DAG) and build
    from a source (an imported disk is the same file however often it is imported: the fleet leaves it out)."""
    from image_factory.definitions import load_valid

    return [d for d in load_valid(images) if d.source.kind != "disk"]


def fleet_dag(folder: Path | None = None) -> DAG:
    """``fleet_rebuild``: params ``reason`` (recorded on every image run) and ``images`` (empty: all)."""
    from image_factory.operators.fleet import RebuildImageOperator

    images = folder or include_dir() / "images"
    config = limits.load(images.parent)
    definitions = valid_definitions(images)
    names = sorted(d.name for d in definitions)
    by_region: dict[str, list[str]] = {}
    for d in definitions:
        by_region.setdefault(d.build_location, []).append(dag_id_for(d.name))
    with DAG(
        dag_id=FLEET_DAG_ID, schedule=None, start_date=START, catchup=False, max_active_runs=1,
        tags=["golden-image", "fleet"], doc_md=__doc__,
        params={
            "reason": Param("fleet rebuild", type="string", minLength=1, maxLength=400, title="Reason",
                            description="Recorded with every image run."),
            "images": Param(None, type=["null", "array"],
                            items={"type": "string", **({"enum": names} if names else {})},
                            title="Images", description="Empty: every image."),
        },
        default_args={"owner": "platform", "retries": 1},
    ) as dag:
        for region, dag_ids in sorted(by_region.items()):

            @task(task_id=f"select_{region}")
            def select(dag_ids: list[str] = dag_ids, **context: Any) -> list[str]:
                wanted = context["params"].get("images") or []
                return [i for i in dag_ids if not wanted or i in {dag_id_for(w) for w in wanted}]

            pool = {"pool": limits.builds_pool(region), "pool_slots": 1} if config else {}
            RebuildImageOperator.partial(
                task_id=f"rebuild_{region}", conf={"reason": "{{ params.reason }} (fleet run {{ run_id }})"},
                wait_for_completion=True, deferrable=True, poke_interval=config.poll_seconds if config else 15,
                fail_when_dag_is_paused=True, **pool,
            ).expand(trigger_dag_id=select())
    return dag
