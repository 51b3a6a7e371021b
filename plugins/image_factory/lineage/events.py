"""A lineage record as OpenLineage sees it, and as Airflow Assets: source image in, image version out.

Datasets are named so that generations connect: a version is the output of its build
(namespace ``azurecompute://<subscription>``, name ``<group>/<gallery>/<definition>/<version>``)
and the input of every build that starts from it. Marketplace images live in the
``azure-marketplace`` namespace as ``publisher:offer:sku:version``; an imported disk file is
``file://<worker host>`` and its path. What standard facets cannot
say (trigger, scripts, package manifest digest, smoke results, replication) travels in the
``goldenImageBuild`` run facet and the ``goldenImageVersion`` dataset facet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr
from airflow.providers.common.compat.openlineage.facet import Dataset, DatasetFacet, RunFacet

from image_factory.lineage.record import manifest_digest

SCHEMA_BASE = "https://github.com/golden-image-factory/golden-image-factory/blob/main/plugins/image_factory/lineage"
MARKETPLACE_NAMESPACE = "azure-marketplace"
ASSET_SCHEME = "azurecompute"  # OpenLineage namespace and version Asset URI scheme


@attr.define
class GoldenImageBuildRunFacet(RunFacet):
    """How and from what the version was built."""

    image: str
    version: str
    status: str
    trigger: str
    triggeredBy: str | None
    reason: str
    gitCommit: str
    scripts: list[dict[str, str]]
    packageCount: int
    packageManifest: str
    stageSeconds: dict[str, float]
    failedTask: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/GoldenImageBuildRunFacet.json"


@attr.define
class GoldenImageVersionDatasetFacet(DatasetFacet):
    """Where the version lives and how it tested."""

    versionId: str | None
    regions: list[dict[str, Any]]
    smoke: list[dict[str, Any]]
    parent: str | None

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/GoldenImageVersionDatasetFacet.json"


def dataset_name(resource_id: str) -> tuple[str, str]:
    """(namespace, name) of a gallery version or managed image by its ARM id."""
    parts = resource_id.strip("/").lower().split("/")
    subscription, group = parts[1], parts[3]
    if "versions" in parts:
        return f"{ASSET_SCHEME}://{subscription}", f"{group}/{parts[-5]}/{parts[-3]}/{parts[-1]}"
    return f"{ASSET_SCHEME}://{subscription}", f"{group}/images/{parts[-1]}"


def source_dataset(source: Mapping[str, Any]) -> Dataset:
    if source.get("id"):
        return Dataset(*dataset_name(source["id"]))
    if source.get("disk"):  # an imported file, named as OpenLineage names local files: file://<host>, path
        return Dataset(f"file://{source.get('host') or 'localhost'}", str(source["disk"]))
    return Dataset(MARKETPLACE_NAMESPACE, f"{source['publisher']}:{source['offer']}:{source['sku']}:{source['version']}")


def operator_lineage(record: Mapping[str, Any]) -> Any:
    """The OperatorLineage the OpenLineage provider emits for the recording task."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    run = record["run"]
    build = GoldenImageBuildRunFacet(
        image=record["image"], version=record["version"], status=record["status"], trigger=run["trigger"],
        triggeredBy=run.get("triggered_by"), reason=run.get("reason", ""), gitCommit=record["git_commit"],
        scripts=list(record["scripts"]), packageCount=len(record["packages"]),
        packageManifest=manifest_digest(record["packages"]), stageSeconds=dict(record["stage_seconds"]),
        failedTask=record.get("failed_task"))
    outputs = []
    target = record.get("version_id") or record.get("managed_image_id")
    if target and record["status"] == "published":
        namespace, name = dataset_name(target)
        outputs.append(Dataset(namespace, name, facets={"goldenImageVersion": GoldenImageVersionDatasetFacet(
            versionId=record.get("version_id"), regions=list(record["regions"]), smoke=list(record["smoke"]),
            parent=record.get("parent_id"))}))
    return OperatorLineage(inputs=[source_dataset(record["source"])], outputs=outputs,
                           run_facets={"goldenImageBuild": build})


def definition_asset(image: str) -> Any:
    """The Asset a DAG schedules on to run whenever a new version of this image is published (parse-time: no I/O)."""
    from airflow.sdk import Asset

    return Asset(name=f"golden_image_{image}", uri=f"golden-image://{image}")


def version_asset(version_id: str) -> Any:
    """Each published version as an Asset of its own, named by the version's ARM id."""
    from airflow.sdk import Asset

    namespace, name = dataset_name(version_id)
    return Asset(name=f"{namespace}/{name}", uri=f"{namespace}/{name}")
