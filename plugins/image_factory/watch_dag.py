"""The source watcher DAG: rebuild golden images whose Marketplace or parent gallery image moved on."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, task

from image_factory.dag_factory import START, dag_id_for
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient

WATCH_DAG_ID = "watch_image_sources"


def current_states(azure_conn_id: str) -> list[Any]:
    """Every definition's source: what ``latest`` is now, and what its newest promoted version used."""
    from image_factory.definitions import DefinitionError, load_file
    from image_factory.hooks.compute import ComputeHook
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.pipeline.build import include_dir
    from image_factory.source_watch import SourceState, newest_promoted

    compute, gallery = ComputeHook(azure_conn_id), GalleryHook(azure_conn_id)
    states = []
    for path in sorted((include_dir() / "images").glob("*.yaml")):
        try:
            d = load_file(path, label=f"images/{path.name}")
        except DefinitionError:
            continue  # shown as its own failing DAG
        built = newest_promoted(gallery.published_versions(d.gallery_resource_group, d.gallery_name, d.definition))
        built_from = (built or {}).get("tags", {}).get("source")
        current, follows = None, False
        if d.source.marketplace and d.source.marketplace.get("version", "latest") == "latest":
            m, follows = d.source.marketplace, True
            version = compute.resolve_marketplace_version(d.build_location, m["publisher"], m["offer"], m["sku"], "latest")
            current = f"{m['publisher']}:{m['offer']}:{m['sku']}:{version}"
        elif d.source.gallery_image_version and d.source.gallery_image_version.get("version", "latest") == "latest":
            g, follows = d.source.gallery_image_version, True
            parent = newest_promoted(gallery.published_versions(g["resource_group"], g["gallery"], g["definition"]))
            current = parent["id"].lower() if parent else None
            built_from = built_from.lower() if built_from else None
        states.append(SourceState(image=d.name, dag_id=dag_id_for(d.name), follows_latest=follows,
                                  current_source=current, built_from=built_from,
                                  built_version=(built or {}).get("name")))
    return states


def watcher_dag(*, azure_conn_id: str = DEFAULT_CONN_ID, every: timedelta = timedelta(hours=1)) -> DAG:
    from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

    with DAG(
        dag_id=WATCH_DAG_ID, schedule=every, start_date=START, catchup=False, max_active_runs=1,
        tags=["golden-image", "source-watch"], doc_md=__doc__ + "\n\nChecks every hour; see "
        "`plugins/image_factory/source_watch.py` for the rule.",
        default_args={"owner": "platform", "retries": 3, "retry_delay": timedelta(minutes=1)},
    ) as dag:

        @task(task_id="find_changed_sources")
        def find_changed_sources(**context: Any) -> list[dict[str, Any]]:
            from image_factory.source_watch import rebuilds

            with retry_only_transient("find changed sources"):
                states = current_states(azure_conn_id)
            ti = context["ti"]
            busy = [s.dag_id for s in states
                    if ti.get_dr_count(dag_id=s.dag_id, states=["queued", "running"]) > 0]
            todo = rebuilds(states, busy)
            import logging

            log = logging.getLogger(__name__)
            for s in states:
                log.info("%s: latest is %s, newest promoted version %s was built from %s%s", s.image,
                         s.current_source, s.built_version, s.built_from, " (a build is running)" if s.dag_id in busy else "")
            log.info("Rebuilding: %s", ", ".join(t["trigger_dag_id"] for t in todo) or "nothing")
            return todo

        TriggerDagRunOperator.partial(task_id="trigger_rebuilds", wait_for_completion=False).expand_kwargs(
            find_changed_sources())
    return dag
