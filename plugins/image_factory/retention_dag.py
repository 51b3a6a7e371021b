"""The retention DAG: delete the gallery image versions no one needs any more, and say why each stays.

Every day `find` lists the versions of every valid image definition that publishes a gallery version,
with their end-of-life dates, the locks covering them (other than the factory's own) and the lineage
edges to them (the lineage store's descendants and the `lineage-parent` tags), and applies the rules
in `plugins/image_factory/retention.py` (`retention.keep` newest good versions, end of life, never
`latest`, a parent of a version that remains, or a locked version). `delete` deletes the chosen
versions group by group, lifting the factory's own CanNotDelete lock only while it deletes (it is
back afterwards, also on error), and marks them deleted in the lineage store. `report` logs a table
of what was removed and what was kept and why, returns it, and fails the run if a delete did not
happen. A second run finds nothing more to delete.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, TriggerRule, task

from image_factory.dag_factory import START
from image_factory.operators.base import DEFAULT_CONN_ID, retry_only_transient

RETAIN_DAG_ID = "retain_image_versions"

log = logging.getLogger(__name__)


def other_locks(access: Any, resource_id: str, resource_group: str) -> list[str]:
    """The locks covering the version except the factory's own on the gallery's group, as ``name (level)``."""
    from image_factory.naming import FACTORY_LOCK

    own_scope = f"/resourcegroups/{resource_group.lower()}"
    return [f"{lock['name']} ({lock['level']})" for lock in access.locks_covering(resource_id)
            if not (lock["name"] == FACTORY_LOCK and lock["scope"].lower().endswith(own_scope))]


def survey(azure_conn_id: str, images: Path, store: Any, now: datetime) -> list[dict[str, Any]]:
    """Every version's verdict, with where it lives (what ``delete`` needs)."""
    from image_factory.definitions import load_valid
    from image_factory.hooks.access import AccessHook
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.lineage.record import PUBLISHED, TAG_PARENT, artifact_id
    from image_factory.retention import Version, settle, short_ref
    from image_factory.revocation import location_of_record

    gallery, access = GalleryHook(azure_conn_id), AccessHook(azure_conn_id)
    places: dict[tuple[str, str, str], tuple[str, int]] = {}
    for d in load_valid(images):  # imported images too: their versions are published like any other
        if d.gallery_version:
            key = (d.gallery_resource_group, d.gallery_name, d.definition)
            keep = max(d.retention_keep, places[key][1]) if key in places else d.retention_keep
            places[key] = (d.name, keep)
    definitions: dict[str, tuple[list[Version], int]] = {}
    where: dict[str, dict[str, Any]] = {}
    children: set[tuple[str, str]] = set()
    locked: dict[str, str] = {}
    for (group, gal, definition), (image, keep) in sorted(places.items()):
        versions = []
        for listed in gallery.published_versions(group, gal, definition):
            details = gallery.version_details(group, gal, definition, listed["name"]) or {}
            eol = details.get("end_of_life")
            ref = short_ref(listed["id"])
            versions.append(Version(ref=ref, name=listed["name"], provisioning_state=listed["provisioning_state"],
                                    exclude_from_latest=listed["exclude_from_latest"],
                                    end_of_life=datetime.fromisoformat(eol) if eol else None, tags=listed["tags"]))
            where[ref] = {"image": image, "resource_group": group, "gallery": gal, "definition": definition,
                          "version": listed["name"], "id": listed["id"]}
            parent = listed["tags"].get(TAG_PARENT, "none")
            if parent != "none":
                children.add((ref, parent.lower()))
            for child in store.descendants(artifact_id(listed["id"])):
                if child["depth"] == 1 and child["status"] == PUBLISHED and not child.get("deleted_at"):
                    at = location_of_record(child)
                    children.add((at.ref if at else child["artifact_id"], ref))
            if found := other_locks(access, listed["id"], group):
                locked[ref] = ", ".join(found)
        definitions[f"{group}/{gal}/{definition}".lower()] = (versions, keep)
    verdicts = settle(definitions, now, children=children, locked=locked)
    return [{**where[v.ref], **v.as_dict()} for key in sorted(verdicts) for v in verdicts[key]]


def delete_chosen(azure_conn_id: str, verdicts: list[dict[str, Any]], store: Any) -> list[str]:
    """Delete every DELETE verdict's version with the factory's lock lifted on its group; the refs deleted."""
    from image_factory.hooks.access import AccessHook
    from image_factory.hooks.gallery import GalleryHook
    from image_factory.retention import DELETE

    gallery, access = GalleryHook(azure_conn_id), AccessHook(azure_conn_id)
    by_group: dict[str, list[dict[str, Any]]] = {}
    for v in verdicts:
        if v["action"] == DELETE:
            by_group.setdefault(v["resource_group"], []).append(v)
    done = []
    for group, doomed in sorted(by_group.items()):
        with access.lock_lifted(group):
            for v in doomed:
                existed = gallery.delete_version(group, v["gallery"], v["definition"], v["version"])
                log.info("%s: %s", v["ref"], "deleted" if existed else "already gone")
                done.append(v)
    for v in done:  # after the lock is back: the store is not Azure, and a failure here must not leave it lifted
        if store.find(v["id"]) is not None:
            store.mark_deleted(v["id"])
    return [v["ref"] for v in done]


def retention_dag(*, azure_conn_id: str = DEFAULT_CONN_ID, schedule: str = "@daily", folder: Path | None = None) -> DAG:
    with DAG(
        dag_id=RETAIN_DAG_ID, schedule=schedule, start_date=START, catchup=False, max_active_runs=1,
        tags=["golden-image", "maintenance"], doc_md=__doc__,
        default_args={"owner": "platform", "retries": 2},
    ) as dag:

        @task(task_id="find")
        def find() -> list[dict[str, Any]]:
            """Every version's verdict (delete or keep, and why)."""
            from datetime import UTC

            from image_factory.hooks.lineage import lineage_store
            from image_factory.pipeline.build import include_dir

            with retry_only_transient("list the image versions"):
                verdicts = survey(azure_conn_id, folder or include_dir() / "images", lineage_store(),
                                  datetime.now(UTC))
            for v in verdicts:
                log.info("%s: %s (%s)", v["ref"], v["action"], v["reason"])
            return verdicts

        @task(task_id="delete")
        def delete(verdicts: list[dict[str, Any]]) -> list[str]:
            from image_factory.hooks.lineage import lineage_store

            with retry_only_transient("delete the image versions"):
                return delete_chosen(azure_conn_id, verdicts, lineage_store())

        @task(task_id="report", trigger_rule=TriggerRule.ALL_DONE)
        def report(verdicts: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
            """Removed is what the gallery no longer has, whatever ``delete`` managed to do."""
            from airflow.sdk.exceptions import AirflowFailException

            from image_factory.hooks.gallery import GalleryHook
            from image_factory.retention import DELETE, outcome, table

            gallery = GalleryHook(azure_conn_id)
            with retry_only_transient("check the deleted image versions"):
                gone = [v["ref"] for v in verdicts if v["action"] == DELETE and gallery.version_details(
                    v["resource_group"], v["gallery"], v["definition"], v["version"]) is None]
            result = outcome(verdicts, gone)
            log.info("%s", table(result))
            if result["not_removed"]:
                raise AirflowFailException("not removed: " + ", ".join(r["ref"] for r in result["not_removed"])
                                           + " (see the delete task)")
            return result

        verdicts: Any = find()
        delete(verdicts) >> report(verdicts)
    return dag
