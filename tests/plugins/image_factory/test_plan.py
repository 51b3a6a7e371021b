"""The plan decides everything before anything is created: params are checked, the version computed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from image_factory.definitions import load_folder
from image_factory.plan import (
    PlanError,
    RunIdentity,
    check_params,
    make_plan,
    source_reference,
    staging_containers,
    staging_of,
)
from image_factory.versioning import Existing

DEFS = load_folder(Path(__file__).resolve().parents[3] / "include" / "images")
WEB = DEFS["debian12-web"]
RUN = RunIdentity("golden_debian12-web", "manual__2026-11-25T10:00:00+00:00")


def test_params_are_checked_and_unknown_keys_refused() -> None:
    assert check_params({}, WEB) == {"bump": "patch", "plan_only": False, "reason": ""}
    with pytest.raises(PlanError, match=r"params: unknown key\(s\) colour"):
        check_params({"colour": "blue"}, WEB)
    with pytest.raises(PlanError, match=r"params\.regions: unknown region\(s\) mars"):
        check_params({"regions": ["westeurope", "mars"]}, WEB)
    with pytest.raises(PlanError, match="must include the gallery's location 'westeurope'"):
        check_params({"regions": ["eastus"]}, WEB)
    with pytest.raises(PlanError, match=r"params\.bump"):
        check_params({"bump": "huge"}, WEB)


def test_fields_left_empty_in_the_form_are_the_defaults() -> None:
    """The trigger form sends null for an empty optional field: no reason is fine, plan only is off."""
    form = {"version": None, "bump": "patch", "regions": None, "replicas": None, "source_version": None,
            "plan_only": None, "reason": None}
    assert check_params(form, WEB) == {"bump": "patch", "plan_only": False, "reason": ""}
    assert check_params({**form, "reason": "", "regions": []}, WEB) == {"bump": "patch", "plan_only": False,
                                                                        "reason": ""}


def test_plan_is_concrete_and_small() -> None:
    plan = make_plan(WEB, RUN, check_params({"regions": ["westeurope", "northeurope"], "reason": "CVE"}, WEB),
                     resolved_source_version="0.20250316.2062", existing_versions=[Existing("1.0.4")],
                     subscription_id="sub")
    assert plan["version"] == "1.0.5"
    assert plan["source"] == {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.20250316.2062"}
    assert plan["regions"] == [{"name": "westeurope", "replicas": 1, "storage_account_type": "Standard_LRS"},
                               {"name": "northeurope", "replicas": 1, "storage_account_type": "Standard_LRS"}]
    assert plan["resource_group"].startswith("rg-imgf-debian12-web-") and plan["reason"] == "CVE"
    assert len(repr(plan)) < 2000  # XCom carries pointers, not payloads


def test_an_explicit_version_must_be_newer() -> None:
    with pytest.raises(PlanError, match=r"greater than the newest version in the gallery, 1\.2\.0"):
        make_plan(WEB, RUN, check_params({"version": "1.1.0"}, WEB), resolved_source_version="1",
                  existing_versions=[Existing("1.2.0")], subscription_id="sub")


def test_gallery_sources_become_version_ids() -> None:
    from dataclasses import replace

    from image_factory.definitions import Source

    child = replace(WEB, source=Source(gallery_image_version={"resource_group": "rg", "gallery": "g",
                                                               "definition": "d", "version": "latest"}))
    assert source_reference(child, "1.0.3", "sub") == {
        "id": "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.3"}


def test_replicas_override_and_plan_preview() -> None:
    from image_factory.plan import describe_plan

    with pytest.raises(PlanError, match=r"params\.replicas: must be a whole number from 1 to 100 \(got 0\)"):
        check_params({"replicas": 0}, WEB)
    plan = make_plan(WEB, RUN, check_params({"replicas": 2, "plan_only": True}, WEB),
                     resolved_source_version="0.1.2", existing_versions=[], subscription_id="sub")
    assert [r["replicas"] for r in plan["regions"]] == [2, 2] and plan["plan_only"] is True
    preview = describe_plan(WEB, plan)
    assert preview["version"] == "1.0.0"
    assert any("Debian:debian-12:12-gen2:0.1.2" in line for line in preview["creates"])
    assert len([line for line in preview["creates"] if line.startswith("smoke VM in")]) == 2
    share = WEB.sharing[0]  # debian12-web shares its images with one group
    assert preview["changes"] == [
        "gal_golden/debian12-web: 1.0.0 becomes the latest version if every region passes its smoke test",
        "resource group rg-golden-images: CanNotDelete lock golden-image-factory-protect (kept, or made)",
        f"gal_golden/debian12-web: role Reader for Group {share.principal_id} (kept, or assigned)",
        "lineage record of debian12-web 1.0.0 (store, version tags, OpenLineage, Assets)"]


def test_the_sweeper_lists_each_imports_staging_container_once_under_its_prefix() -> None:
    imported = DEFS["debian12-imported"]
    twin = dataclasses.replace(imported, name="debian12-imported-twin")
    places = staging_containers([*DEFS.values(), imported, twin], "00000000-0000-0000-0000-000000000000")
    blob = staging_of(imported, "00000000-0000-0000-0000-000000000000", "1.2.3")
    assert blob["blob"] == "debian12-imported/1.2.3.vhd"
    mine = {k: v for k, v in blob.items() if k != "blob"}
    by_prefix = {p["prefix"]: p for p in places}
    assert len(places) == 2 and set(by_prefix) == {"debian12-imported/", "debian12-imported-twin/"}  # only imports
    assert by_prefix["debian12-imported/"] == {**mine, "prefix": "debian12-imported/"}
    assert blob["blob"].startswith("debian12-imported/") and places == sorted(places, key=lambda p: tuple(p.values()))
