"""Lineage records as a real run makes them: a plan and the stages' return values, through ``record.build``.

The shapes follow ``plan.make_plan`` and the pipeline's steps (customise, capture, replicate, the mapped
smoke test, promote, ``steps.report``), so a test's record is the record a run would have written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from image_factory.lineage import record
from image_factory.pipeline.steps import report

SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
GALLERY = ("rg-golden-images", "gal_golden")
MARKETPLACE = {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.20251102.2"}
PACKAGES = ("bash=5.2.15-2+b7", "curl=7.88.1-10+deb12u8", "openssh-server=1:9.2p1-2+deb12u3", "openssl=3.0.15-1~deb12u1")
SCRIPTS = (("linux/10-baseline.sh", "1" * 64), ("linux/20-nginx.sh", "2" * 64))
REGIONS = (("westeurope", 2, "Standard_LRS"), ("eastus", 1, "Standard_ZRS"))
# the pipeline's tasks in run order (operators/lineage.py STAGES): a failed run has no output from where it stopped on
ORDER = ("plan", "build_environment", "provision_vm", "wait_for_guest", "check_changes", "customise", "generalize",
         "wait_for_stop", "deallocate", "capture", "replicate", "smoke_test", "promote", "report")


def version_id(image: str, version: str, gallery: tuple[str, str] = GALLERY) -> str:
    """The gallery image version's ARM id, spelled as Azure returns it (mixed case)."""
    return (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{gallery[0]}/providers/Microsoft.Compute/galleries/"
            f"{gallery[1]}/images/{image}/versions/{version}")


def make_plan(image: str, version: str, *, parent: str | None = None, marketplace: dict[str, str] | None = None,
              run_id: str = "manual__2026-11-20T10:00:00+00:00", reason: str = "",
              regions: Sequence[tuple[str, int, str]] = REGIONS) -> dict[str, Any]:
    """What ``make_plan`` returns: a gallery parent (its version id) or a Marketplace image as the source."""
    source = {"id": parent} if parent else dict(marketplace or MARKETPLACE)
    return {"image": image, "dag_id": f"golden_{image}", "run_id": run_id, "version": version,
            "os_type": "Linux", "os_state": "Generalized", "location": regions[0][0], "source": source,
            "source_kind": "gallery_image_version" if parent else "marketplace",
            "regions": [{"name": n, "replicas": r, "storage_account_type": s} for n, r, s in regions],
            "reason": reason, "plan_only": False}


def _smoke(region: str, passed: bool) -> dict[str, Any]:
    checks = [{"name": "boots and accepts a login", "passed": True, "detail": ""},
              {"name": "new hostname", "passed": True, "detail": f"smk-{region[:6]} (expected smk-{region[:6]})"},
              {"name": "nginx answers", "passed": passed, "detail": "image=ok" if passed else "curl: (7) refused"}]
    return {"region": region, "passed": passed, "checks": checks,
            "create_seconds": 12.5, "boot_seconds": 20.0, "check_seconds": 3.25}


def make_stages(plan: dict[str, Any], *, packages: Iterable[str] = PACKAGES, failed_task: str | None = None,
                smoke_failures: Sequence[str] = ()) -> dict[str, Any]:
    """Each task's return value as ``RecordLineageOperator`` pulls it; tasks from ``failed_task`` on returned nothing."""
    vid = version_id(plan["image"], plan["version"])
    failing = set(smoke_failures)
    stages: dict[str, Any] = {
        "plan": plan,
        "check_changes": {"publish": True, "reason": "source changed", "seconds": 4.0},
        "customise": {"scripts": [{"path": p, "sha256": h, "seconds": 30.0} for p, h in SCRIPTS],
                      "packages": list(packages), "seconds": 61.5},
        "capture": {"version_id": vid, "managed_image_id": None, "seconds": 40.0},
        "replicate": {"regions": {r["name"]: {"state": "Completed", "progress": 100, "seconds": 90.0}
                                  for r in plan["regions"]}},
        "smoke_test": [_smoke(r["name"], r["name"] not in failing) for r in plan["regions"]],
        "promote": {"promoted": True, "version": plan["version"], "regions": sorted(r["name"] for r in plan["regions"])},
    }
    if failed_task:
        for task in ORDER[ORDER.index(failed_task):]:
            stages[task] = [] if task == "smoke_test" else None
    if not failed_task:
        stages["report"] = report(plan, stages)
    return stages


def make_record(image: str, version: str, *, parent: str | None = None, marketplace: dict[str, str] | None = None,
                packages: Iterable[str] = PACKAGES, failed_task: str | None = None, smoke_failures: Sequence[str] = (),
                run_id: str = "manual__2026-11-20T10:00:00+00:00", trigger: str = "api", triggered_by: str | None = "admin",
                reason: str = "CVE-2026-1234", recorded_at: str = "2026-11-20T10:30:00+00:00",
                regions: Sequence[tuple[str, int, str]] = REGIONS, requested: str = "latest") -> dict[str, Any]:
    """A version's record as ``RecordLineageOperator`` builds it (a parent is its gallery version id)."""
    plan = make_plan(image, version, parent=parent, marketplace=marketplace, run_id=run_id, reason=reason,
                     regions=regions)
    stopped = failed_task or ("promote" if smoke_failures else None)  # promote refuses a version that failed a region
    stages = make_stages(plan, packages=packages, failed_task=stopped, smoke_failures=smoke_failures)
    image_facts = {"gallery": {"resource_group": GALLERY[0], "name": GALLERY[1], "definition": image},
                   "os_type": "Linux", "os_state": "Generalized",
                   "source_requested": requested,
                   "version_id": version_id(image, version)}
    run = {"dag_id": plan["dag_id"], "run_id": run_id, "run_type": "manual", "trigger": trigger,
           "triggered_by": triggered_by, "started_at": "2026-11-20T10:00:01+00:00"}
    return record.build(plan, stages, image=image_facts, run=run, git_commit="a" * 40, failed_task=stopped,
                        recorded_at=recorded_at, end_of_life="2027-11-20T10:00:00+00:00")
