"""Image definitions: the shipped files validate, and every broken rule is named with its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from image_factory.definitions import DefinitionError, Share, check_scripts, load_file, load_folder, parse

ROOT = Path(__file__).resolve().parents[3]
IMAGES, SCRIPTS = ROOT / "include" / "images", ROOT / "include" / "scripts"


@pytest.fixture
def web() -> dict[str, Any]:
    return yaml.safe_load((IMAGES / "debian12-web.yaml").read_text())


def problems(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as info:
        parse(raw, "images/x.yaml", stem=raw.get("name") if isinstance(raw, dict) else None)
    return info.value.problems


def test_shipped_definitions_validate_and_cover_the_required_kinds() -> None:
    defs = load_folder(IMAGES)
    for d in defs.values():
        check_scripts(d, SCRIPTS)
    kinds = {(d.os_type, d.os_state, bool(d.managed_image)) for d in defs.values()}
    assert ("Linux", "Generalized", False) in kinds
    assert ("Linux", "Specialized", False) in kinds
    assert ("Windows", "Generalized", False) in kinds
    assert ("Linux", "Generalized", True) in kinds
    web = defs["debian12-web"]
    assert web.source.kind == "marketplace" and (web.source.marketplace or {}).get("version") == "latest"
    assert web.region_names == ("westeurope", "eastus")
    assert web.regions[1].replicas == 2 and web.regions[1].storage_account_type == "Standard_ZRS"


def test_every_problem_is_reported_with_its_field_and_rule(web: dict[str, Any]) -> None:
    web["replication"]["regions"][1]["replicas"] = 0
    web["gallery"]["name"] = "bad-name!"
    web["build"]["colour"] = "blue"
    del web["image"]["sku"]
    found = dict(problems(web))
    assert found["replication.regions[1].replicas"] == "must be at least 1 (got 0)"
    assert "letters, digits, dots and underscores" in found["gallery.name"] and "'bad-name!'" in found["gallery.name"]
    assert found["build.colour"].startswith("is not a known field")
    assert found["image.sku"] == "is required"


def test_unchanged_scheduled_rebuilds_publish_unless_the_definition_says_otherwise(web: dict[str, Any]) -> None:
    assert parse(web, "images/x.yaml").publish_when_unchanged is True  # the default: monthly rebuilds publish
    web["schedule"]["publish_when_unchanged"] = False
    assert parse(web, "images/x.yaml").publish_when_unchanged is False
    web["schedule"]["publish_when_unchanged"] = "no"
    assert dict(problems(web))["schedule.publish_when_unchanged"] == "must be of type boolean (got str 'no')"


def test_sharing_gives_each_principal_a_role_reader_by_default(web: dict[str, Any]) -> None:
    group, app = "3F6C9A2E-7D41-4B8A-9E15-C0D2A4B6E8F1", "0b8e4c1d-2f3a-4e5b-8c6d-7e8f9a0b1c2d"
    web["sharing"] = [{"principal_id": group, "principal_type": "Group"},
                      {"principal_id": app, "principal_type": "ServicePrincipal", "role": "Compute Gallery Sharing Admin"}]
    shares = parse(web, "images/x.yaml").sharing
    assert shares == (Share(group, "Group", "Reader"), Share(app, "ServicePrincipal", "Compute Gallery Sharing Admin"))
    del web["sharing"]
    assert parse(web, "images/x.yaml").sharing == ()
    shipped = load_file(IMAGES / "debian12-web.yaml").sharing
    assert [(s.principal_type, s.role) for s in shipped] == [("Group", "Reader")]


@pytest.mark.parametrize(("share", "field", "words"), [
    ({"principal_id": "web-deployers", "principal_type": "Group"}, "sharing[0].principal_id",
     "must be a GUID, the principal's object id in Microsoft Entra ID (8-4-4-4-12 hex digits) (got 'web-deployers')"),
    ({"principal_id": "3f6c9a2e7d414b8a9e15c0d2a4b6e8f1", "principal_type": "Group"}, "sharing[0].principal_id",
     "must be a GUID"),
    ({"principal_id": "3f6c9a2e-7d41-4b8a-9e15-c0d2a4b6e8f1", "principal_type": "Team"}, "sharing[0].principal_type",
     "must be one of User, Group, ServicePrincipal (got 'Team')"),
    ({"principal_id": "3f6c9a2e-7d41-4b8a-9e15-c0d2a4b6e8f1"}, "sharing[0].principal_type", "is required"),
    ({"principal_id": "3f6c9a2e-7d41-4b8a-9e15-c0d2a4b6e8f1", "principal_type": "User", "role": "Reader' or 1"},
     "sharing[0].role", "must be an Azure role name such as Reader"),
])
def test_a_bad_share_is_named_with_its_field(web: dict[str, Any], share: dict[str, str], field: str,
                                             words: str) -> None:
    web["sharing"] = [share]
    found = dict(problems(web))
    assert words in found[field], found


def test_sharing_needs_a_gallery_version_and_no_repeats(web: dict[str, Any]) -> None:
    share = {"principal_id": "3f6c9a2e-7d41-4b8a-9e15-c0d2a4b6e8f1", "principal_type": "Group"}
    web["sharing"] = [share, {**share, "principal_id": share["principal_id"].upper(), "role": "Reader"}]
    assert dict(problems(web))["sharing[1]"] == "must not repeat sharing[0] (the same principal_id and role)"
    web["sharing"] = [share]
    web["outputs"] = {"gallery_version": False, "managed_image": {"name": "img-web"}}
    assert dict(problems(web))["sharing"].startswith("needs outputs.gallery_version: true")


def test_the_error_message_names_the_file(web: dict[str, Any]) -> None:
    web["image"]["os_type"] = "Solaris"
    with pytest.raises(DefinitionError, match=r"^images/x\.yaml: image\.os_type: must be one of Linux, Windows"):
        parse(web, "images/x.yaml")


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda r: r["replication"]["regions"].append({"name": "eastus"}), "replication.regions", "repeat"),
    (lambda r: r["replication"].update(regions=[{"name": "eastus"}]), "replication.regions", "gallery's location"),
    (lambda r: r["build"].update(location="eastus"), "build.location", "gallery's region"),
    (lambda r: r["build"]["scripts"].append({"path": "windows/x.ps1", "sha256": "0" * 64}),
     "build.scripts[2].path", "under linux/"),
    (lambda r: r["image"].update(os_state="Specialized") or r.update(outputs={"managed_image": {"name": "img"}}),
     "outputs.managed_image", "Generalized"),
    (lambda r: r.update(source={"marketplace": r["source"]["marketplace"], "managed_image": "/x"}), "source", "exactly one"),
    (lambda r: r.update(name="other-name"), "name", "file name"),
])
def test_rules_that_span_fields(web: dict[str, Any], change: Any, field: str, words: str) -> None:
    raw = copy.deepcopy(web)
    change(raw)
    with pytest.raises(DefinitionError) as info:
        parse(raw, "images/debian12-web.yaml", stem="debian12-web")
    assert any(f == field and words in rule for f, rule in info.value.problems), info.value.problems


def test_script_checksums_are_pinned(tmp_path: Path, web: dict[str, Any]) -> None:
    scripts = tmp_path / "scripts"
    (scripts / "linux").mkdir(parents=True)
    for s in web["build"]["scripts"]:
        (scripts / s["path"]).write_bytes((SCRIPTS / s["path"]).read_bytes())
    definition = parse(web, "images/debian12-web.yaml", stem="debian12-web")
    check_scripts(definition, scripts)
    (scripts / "linux/20-nginx.sh").write_text("echo changed\n")
    (scripts / "linux/10-baseline.sh").unlink()
    with pytest.raises(DefinitionError) as info:
        check_scripts(definition, scripts)
    found = dict(info.value.problems)
    assert "not found" in found["build.scripts[0].path"]
    assert "must match the script's content" in found["build.scripts[1].sha256"]


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: broken\ngallery: {resource_group: [\n")
    with pytest.raises(DefinitionError, match=r"broken\.yaml: line \d+, column \d+: is not valid YAML"):
        load_file(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(DefinitionError, match="must be a mapping"):
        load_file(empty)
