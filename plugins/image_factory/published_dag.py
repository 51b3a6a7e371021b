"""The DAG that runs whenever any golden image publishes a version: it is scheduled on the images' Assets.

It announces each new version with its lineage (from the lineage store) in its log and returns
them; it is also the example to copy for a DAG of your own that should follow new images, e.g. to
roll a VM scale set onto them: ``schedule=definition_asset("debian12-web")``.
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce
from typing import Any

from airflow.sdk import DAG, task

from image_factory.dag_factory import START
from image_factory.lineage.events import definition_asset

PUBLISHED_DAG_ID = "announce_published_images"  # not golden_*: that prefix names image DAGs


def images_in(folder: Any) -> list[str]:
    """The image names of the definitions in ``folder`` (file stems: a broken definition is still an image)."""
    return sorted(p.stem for p in folder.glob("*.yaml"))


def published_dag(images: list[str]) -> DAG | None:
    """None without any image: an empty schedule would never run."""
    if not images:
        return None
    schedule = reduce(lambda a, b: a | b, (definition_asset(i) for i in images))
    with DAG(dag_id=PUBLISHED_DAG_ID, schedule=schedule, start_date=START, catchup=False, max_active_runs=1,
             tags=["golden-image", "lineage"], doc_md=__doc__,
             default_args={"owner": "platform", "retries": 2, "retry_delay": timedelta(seconds=30)}) as dag:

        @task(task_id="announce")
        def announce(**context: Any) -> list[dict[str, Any]]:
            import logging

            from image_factory.hooks.lineage import lineage_store
            from image_factory.lineage.store import LineageError, summarize

            log = logging.getLogger(__name__)
            store, out = lineage_store(), []
            for _asset, asset_events in context["triggering_asset_events"].items():
                for event in asset_events:
                    extra = dict(event.extra or {})
                    if not extra.get("artifact_id"):
                        continue
                    try:
                        line = summarize([store.get(extra["artifact_id"])])[0]
                    except LineageError:
                        line = {**extra, "status": "not in this lineage store"}
                    if line not in out:
                        out.append(line)
                        log.info("Published: %s %s (%s); regions %s; smoke %s; parent %s", line.get("image"),
                                 line.get("version"), line.get("status"), line.get("regions"), line.get("smoke"),
                                 line.get("parent_id") or "none")
            return out

        announce()
    return dag
