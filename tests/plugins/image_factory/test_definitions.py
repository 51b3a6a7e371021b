"""Image definitions: the shipped files validate, and every broken rule is named with its field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from image_factory.definitions import DefinitionError, check_scripts, load_file, load_folder, parse

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
    assert web.source.kind == "marketplace" and web.source.marketplace["version"] == "latest"
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
