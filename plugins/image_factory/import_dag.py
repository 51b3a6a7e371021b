"""The DAG of an image imported from a disk file (``source.disk``): check, convert, upload, publish.

Same shape as a build (dag_factory.py): ``plan`` is the setup, ``teardown`` and ``record_lineage``
always run, ``report`` decides the run's state. Every check of the file (format, VHD footer,
Hyper-V generation, OS state) runs on the worker before the first ARM write; the upload resumes
where an interrupted try stopped. From ``capture`` on, the tasks are the build's own.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from image_factory.dag_parts import plan_and_proceed, publish_and_clean_up, task_defaults
from image_factory.definitions import ImageDefinition
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient


def import_params(common: dict[str, Param]) -> dict[str, Param]:
    """A build's params without the source version pin, plus the disk file to import."""
    params = {k: v for k, v in common.items() if k != "source_version"}
    params["disk_path"] = Param(None, type=["null", "string"], maxLength=1024, title="Disk file",
                                description="The disk image on the worker (raw, qcow2, VMDK, VHD, VHDX): absolute, "
                                            "or relative to the import folder. Empty: the definition's source.disk.path.")
    return params


def _doc(d: ImageDefinition) -> str:
    disk = d.source.disk or {}
    regions = ", ".join(f"{r.name} x{r.replicas} ({r.storage_account_type})" for r in d.regions)
    return (f"# Imported image `{d.name}`\n\n{d.description}\n\n"
            f"- **Publishes**: {d.gallery_name}/{d.definition} ({d.os_type}, {d.os_state}, Hyper-V "
            f"{d.hyper_v_generation}){'; managed image ' + d.managed_image['name'] if d.managed_image else ''}\n"
            f"- **Disk**: `{disk.get('path')}` (format {disk.get('format', 'auto')}); the run's `disk_path` "
            "param imports another file\n"
            f"- **Regions**: {regions}\n\n"
            f"Defined in `include/images/{d.name}.yaml`. Stages: plan → prepare disk (format, footer; a fixed "
            "VHD of whole MiB) → inspect disk (Hyper-V generation, OS state: nothing is created before these pass) "
            "→ environment "
            "(storage account, gallery) → upload (page blob: parallel, empty ranges skipped, resumable, verified) → "
            "capture → replicate → smoke test per region → promote → report; teardown (blob, work files, run "
            "group) and record lineage always run.")


def disk_import_dag(d: ImageDefinition, *, dag_id: str, params: dict[str, Param], start_date: Any,
                    azure_conn_id: str = DEFAULT_CONN_ID, smoke_pool: dict[str, Any] | None = None) -> DAG:
    """The import pipeline for one definition whose source is a disk file."""
    from image_factory.pipeline import imports
    from image_factory.pipeline.build import Build

    conn = azure_conn_id
    with DAG(
        dag_id=dag_id, description=(d.description or d.name)[:200], doc_md=_doc(d), schedule=None,
        start_date=start_date, catchup=False, max_active_runs=1, params=import_params(params),
        tags=["golden-image", "import", d.os_type.lower(), d.os_state.lower(), *d.tags],
        default_args=task_defaults(d),
    ) as dag:

        @task(task_id="prepare_disk")
        def prepare_disk(p: Any) -> dict[str, Any]:
            with retry_only_transient("prepare disk"):
                return imports.prepare(Build.from_task(p, conn))

        @task(task_id="inspect_disk")
        def inspect_disk(p: Any, prepared: Any) -> dict[str, Any]:
            with retry_only_transient("inspect disk"):
                return imports.inspect(Build.from_task(p, conn), prepared)

        @task(task_id="build_environment")
        def build_environment(p: Any, _inspected: Any) -> dict[str, Any]:
            with retry_only_transient("build environment"):
                return imports.environment(Build.from_task(p, conn))

        @task(task_id="upload")
        def upload(p: Any, prepared: Any, env: Any) -> dict[str, Any]:
            with retry_only_transient("upload"):
                return imports.upload(Build.from_task(p, conn), prepared, env)

        @task(task_id="capture")
        def capture(p: Any, env: Any, uploaded: Any) -> dict[str, Any]:
            with retry_only_transient("capture"):
                return imports.capture(Build.from_task(p, conn), env, uploaded)

        p, go = plan_and_proceed(d, conn)
        prepared = prepare_disk(p)
        go >> prepared
        inspected = inspect_disk(p, prepared)
        env = build_environment(p, inspected)
        uploaded = upload(p, prepared, env)
        cap = capture(p, env, uploaded)
        publish_and_clean_up(d, p, cap, {"prepare_disk": prepared, "inspect_disk": inspected, "build_environment": env,
                                         "upload": uploaded},
                             conn=conn, smoke_pool=smoke_pool or {}, teardown_plan=p)
    return dag
