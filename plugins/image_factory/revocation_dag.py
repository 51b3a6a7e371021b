"""The revocation DAG: revoke one golden image version from the UI or the REST API.

Trigger it with `image` (an image definition's name), `version` (Major.Minor.Patch) and `reason`
(required). `revoke` excludes the version from `latest`, sets its end of life to now, tags it
`revoked` and `revoked-reason`, records the revocation in the lineage store and tags every version
built from it (to any depth) that still exists `source-revoked`; builds then refuse it as a source.
Running it again changes nothing (the first revocation time stays). See
`plugins/image_factory/revocation.py`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Param, task

from image_factory.dag_factory import START
from image_factory.lineage.record import MAX_TAG_VALUE
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient
from image_factory.pipeline.build import include_dir

REVOKE_DAG_ID = "revoke_image_version"

log = logging.getLogger(__name__)


def revocation_params(names: list[str]) -> dict[str, Param]:
    """``image``, ``version`` and ``reason``, all required (the UI keeps Trigger disabled until they are set)."""
    choices: dict[str, Any] = {"enum": names} if names else {}
    return {
        "image": Param(type="string", title="Image", description="The image definition whose version is revoked.",
                       **choices),
        "version": Param(type="string", pattern=r"^\d{1,10}\.\d{1,10}\.\d{1,10}$", title="Version",
                         description="Major.Minor.Patch of the published version to revoke."),
        "reason": Param(type="string", minLength=1, maxLength=MAX_TAG_VALUE, pattern=r"\S", title="Reason",
                        description="Why it is revoked (tagged on the version and kept in the lineage store)."),
    }


def revocation_dag(*, azure_conn_id: str = DEFAULT_CONN_ID, folder: Path | None = None) -> DAG:
    from image_factory.definitions import load_valid

    # imported images too: their versions are published like any other
    names = sorted(d.name for d in load_valid(folder or include_dir() / "images") if d.gallery_version)
    with DAG(
        dag_id=REVOKE_DAG_ID, schedule=None, start_date=START, catchup=False, max_active_runs=1,
        tags=["golden-image", "maintenance"], doc_md=__doc__, params=revocation_params(names),
        default_args={"owner": "platform", "retries": 2},
    ) as dag:

        @task(task_id="revoke")
        def revoke(**context: Any) -> dict[str, Any]:
            from image_factory.hooks.lineage import lineage_store
            from image_factory.revocation import report_lines
            from image_factory.revocation import revoke as revoke_version

            params = context["params"]
            with retry_only_transient("revoke the image version"):
                report = revoke_version(f"{params['image']}@{params['version']}", params["reason"], azure_conn_id,
                                        lineage_store())
            for line in report_lines(report):
                log.info("%s", line)
            return report

        revoke()
    return dag
