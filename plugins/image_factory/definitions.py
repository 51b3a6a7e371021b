"""Image definitions: include/images/*.yaml → validated, typed ``ImageDefinition`` (pure).

Every error names the file, the field and the rule, and all of a file's errors are reported at
once, so a user fixes a definition in one pass. Checks that need more than the file (script
checksums) take the scripts folder explicitly; nothing here talks to Azure or Airflow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from image_factory.definition_schema import DEFAULT_RETENTION_KEEP, SCHEMA

_VALIDATOR = Draft202012Validator(SCHEMA)


class DefinitionError(ValueError):
    """One or more broken rules in an image definition, each as ``file: field: rule``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {path or '(top level)'}: {rule}" for path, rule in problems]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Region:
    name: str
    replicas: int = 1
    storage_account_type: str = "Standard_LRS"


@dataclass(frozen=True)
class Script:
    path: str
    sha256: str


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    command: str
    expect_output: str | None = None


@dataclass(frozen=True)
class Share:
    """A role on the gallery image definition for one principal (who may use the image)."""

    principal_id: str
    principal_type: str
    role: str = "Reader"


@dataclass(frozen=True)
class Source:
    """Exactly one of the four kinds is set: a disk file is imported, the others are built from."""

    marketplace: dict[str, str] | None = None
    managed_image: str | None = None
    gallery_image_version: dict[str, str] | None = None
    disk: dict[str, Any] | None = None

    @property
    def kind(self) -> str:
        if self.disk:
            return "disk"
        return "marketplace" if self.marketplace else "managed_image" if self.managed_image else "gallery_image_version"


@dataclass(frozen=True)
class ImageDefinition:
    name: str
    description: str
    owner: str
    tags: tuple[str, ...]
    gallery_resource_group: str
    gallery_name: str
    gallery_location: str
    definition: str
    publisher: str
    offer: str
    sku: str
    os_type: str
    os_state: str
    hyper_v_generation: str
    source: Source
    build_location: str
    vm_size: str
    os_disk_gb: int | None
    scripts: tuple[Script, ...]
    build_timeout_minutes: int
    smoke_vm_size: str
    smoke_checks: tuple[SmokeCheck, ...]
    regions: tuple[Region, ...]
    replication_timeout_minutes: int
    gallery_version: bool
    managed_image: dict[str, str] | None
    end_of_life_days: int | None
    schedule: dict[str, Any] = field(default_factory=dict)
    sharing: tuple[Share, ...] = ()
    retention_keep: int = DEFAULT_RETENTION_KEEP

    @property
    def generalized(self) -> bool:
        return self.os_state == "Generalized"

    @property
    def windows(self) -> bool:
        return self.os_type == "Windows"

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.regions)

    @property
    def publish_when_unchanged(self) -> bool:
        """False: a scheduled rebuild that finds nothing changed publishes nothing (see changes.py)."""
        return bool(self.schedule.get("publish_when_unchanged", True))


def _field_path(error: ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _rule(error: ValidationError) -> tuple[str, str]:
    """A schema error as (field, rule in words)."""
    path, kind, schema, value = _field_path(error), error.validator, error.schema, error.instance

    def at(name: str) -> str:
        return f"{path}.{name}" if path else name

    if kind == "required":
        missing = [r for r in error.validator_value if isinstance(value, dict) and r not in value]
        return at(missing[0] if missing else "?"), "is required"
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return at(extra[0] if extra else "?"), f"is not a known field (known: {', '.join(allowed)})"
    if kind == "pattern":
        return path, f"must be {schema.get('description', 'in the form ' + schema['pattern'])} (got {value!r})"
    if kind == "enum":
        allowed = [str(v) for v in schema["enum"]]
        if len(allowed) > 8:
            return path, f"must be one of the {len(allowed)} known values, e.g. {', '.join(allowed[:3])} (got {value!r})"
        return path, f"must be one of {', '.join(allowed)} (got {value!r})"
    if kind == "type":
        return path, f"must be of type {schema['type']} (got {type(value).__name__} {value!r})"
    if kind in {"minimum", "maximum"}:
        return path, f"must be {'at least' if kind == 'minimum' else 'at most'} {schema[kind]} (got {value!r})"
    if kind in {"minLength", "maxLength"}:
        n = schema[kind]
        return path, f"must have {'at least' if kind == 'minLength' else 'at most'} {n} characters"
    if kind in {"minItems", "maxItems"}:
        return path, f"must have {'at least' if kind == 'minItems' else 'at most'} {schema[kind]} entries"
    if kind in {"minProperties", "maxProperties"}:
        return path, f"must have {schema.get('description', f'{kind} {schema[kind]}')}" if "description" in schema \
            else f"must set {'at least' if kind == 'minProperties' else 'at most'} {schema[kind]} field(s)"
    return path, error.message


def _semantic_problems(raw: dict[str, Any], stem: str | None) -> list[tuple[str, str]]:
    """Rules that span fields (Azure's, and the factory's), checked once the shape is valid."""
    problems: list[tuple[str, str]] = []
    if stem is not None and raw["name"] != stem:
        problems.append(("name", f"must equal the file name without .yaml ({stem!r}, got {raw['name']!r})"))
    image, gallery, build = raw["image"], raw["gallery"], raw["build"]
    regions = [r["name"] for r in raw["replication"]["regions"]]
    dupes = sorted({r for r in regions if regions.count(r) > 1})
    if dupes:
        problems.append(("replication.regions", f"must not repeat a region (repeated: {', '.join(dupes)})"))
    outputs = raw.get("outputs", {"gallery_version": True})
    if outputs.get("gallery_version", "managed_image" not in outputs):
        if gallery["location"] not in regions:
            problems.append(("replication.regions",
                             f"must include the gallery's location {gallery['location']!r} (Azure keeps the "
                             "image version's source replica there)"))
        if build["location"] != gallery["location"]:
            problems.append(("build.location", f"must equal gallery.location {gallery['location']!r}: Azure "
                                               "captures a gallery version only from a VM in the gallery's region"))
    managed = outputs.get("managed_image")
    if managed and managed.get("location", build["location"]) != build["location"]:
        problems.append(("outputs.managed_image.location",
                         f"must equal build.location {build['location']!r}: a managed image is captured in the "
                         "VM's region"))
    if managed and image["os_state"] == "Specialized":
        problems.append(("outputs.managed_image", "is only possible for a Generalized image (Azure captures managed "
                                                  "images from generalized VMs)"))
    folder = "windows" if image["os_type"] == "Windows" else "linux"
    for i, script in enumerate(build.get("scripts", [])):
        if not script["path"].startswith(folder + "/"):
            problems.append((f"build.scripts[{i}].path",
                             f"must be under {folder}/ for an os_type {image['os_type']} image (got {script['path']!r})"))
    shares = [(s["principal_id"].lower(), s.get("role", "Reader").lower()) for s in raw.get("sharing", [])]
    for i, share in enumerate(shares):
        if share in shares[:i]:
            problems.append((f"sharing[{i}]", f"must not repeat sharing[{shares.index(share)}] (the same "
                                              "principal_id and role)"))
    if shares and not outputs.get("gallery_version", "managed_image" not in outputs):
        problems.append(("sharing", "needs outputs.gallery_version: true (roles are assigned on the gallery image "
                                    "definition)"))
    source = raw["source"]
    if "disk" in source:
        if image["os_type"] != "Linux":
            problems.append(("source.disk", "imports Linux disks only: a Windows disk's OS state cannot be checked "
                                            "before upload (build Windows images from the Marketplace)"))
        if build.get("scripts"):
            problems.append(("build.scripts", "must be empty for an imported disk: it is published as it is "
                                              "(customise it before export, or build from the imported version)"))
    if "managed_image" in source and image["os_state"] == "Specialized":
        problems.append(("source.managed_image", "cannot feed a Specialized image (managed images are generalized)"))
    return problems


def parse(raw: Any, source: str, *, stem: str | None = None) -> ImageDefinition:
    """Validate one definition's parsed YAML and build the typed definition."""
    if not isinstance(raw, dict):
        raise DefinitionError(source, [("", "must be a mapping of fields (the file is empty or not YAML mapping)")])
    errors = sorted(_VALIDATOR.iter_errors(raw), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        raise DefinitionError(source, [_rule(e) for e in errors])
    problems = _semantic_problems(raw, stem)
    if problems:
        raise DefinitionError(source, problems)
    return _build(raw)


def _build(raw: dict[str, Any]) -> ImageDefinition:
    image, gallery, build = raw["image"], raw["gallery"], raw["build"]
    smoke, replication = raw.get("smoke", {}), raw["replication"]
    outputs = raw.get("outputs", {"gallery_version": True})
    managed = outputs.get("managed_image")
    if managed:
        managed = {"resource_group": managed.get("resource_group", gallery["resource_group"]),
                   "name": managed["name"], "location": managed.get("location", build["location"])}
    return ImageDefinition(
        name=raw["name"], description=raw.get("description", ""), owner=raw.get("owner", "platform"),
        tags=tuple(raw.get("tags", [])),
        gallery_resource_group=gallery["resource_group"], gallery_name=gallery["name"],
        gallery_location=gallery["location"],
        definition=image["definition"], publisher=image["publisher"], offer=image["offer"], sku=image["sku"],
        os_type=image["os_type"], os_state=image["os_state"], hyper_v_generation=image["hyper_v_generation"],
        source=Source(**raw["source"]),
        build_location=build["location"], vm_size=build["vm_size"], os_disk_gb=build.get("os_disk_gb"),
        scripts=tuple(Script(**s) for s in build.get("scripts", [])),
        build_timeout_minutes=build.get("timeout_minutes", 120),
        smoke_vm_size=smoke.get("vm_size", build["vm_size"]),
        smoke_checks=tuple(SmokeCheck(**c) for c in smoke.get("checks", [])),
        regions=tuple(Region(**r) for r in replication["regions"]),
        replication_timeout_minutes=replication.get("timeout_minutes", 60),
        gallery_version=bool(outputs.get("gallery_version", managed is None)),
        managed_image=managed,
        end_of_life_days=(raw.get("end_of_life") or {}).get("days"),
        schedule=dict(raw.get("schedule", {})),
        sharing=tuple(Share(**s) for s in raw.get("sharing", [])),
        retention_keep=(raw.get("retention") or {}).get("keep", DEFAULT_RETENTION_KEEP),
    )


def load_file(path: Path, *, label: str | None = None) -> ImageDefinition:
    """Read and validate one YAML file; ``label`` is how errors name it (default: the path)."""
    name = label or str(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise DefinitionError(name, [(where, f"is not valid YAML: {getattr(exc, 'problem', exc)}")]) from None
    return parse(raw, name, stem=path.stem)


def load_folder(folder: Path) -> dict[str, ImageDefinition]:
    """Every ``*.yaml`` in ``folder`` by name; raises the first file's errors (files sorted)."""
    return {d.name: d for d in (load_file(p, label=f"{folder.name}/{p.name}") for p in sorted(folder.glob("*.yaml")))}


def load_valid(folder: Path) -> list[ImageDefinition]:
    """Every ``*.yaml`` in ``folder`` that validates, sorted by file; a broken one is left out (its own DAG
    fails and says why), so one bad file does not stop the maintenance DAGs for the rest."""
    found = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            found.append(load_file(path, label=f"{folder.name}/{path.name}"))
        except DefinitionError:
            continue
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_scripts(definition: ImageDefinition, scripts_dir: Path, *, source: str | None = None) -> None:
    """Every script exists and matches its pinned checksum (a changed script must be re-pinned)."""
    problems: list[tuple[str, str]] = []
    for i, script in enumerate(definition.scripts):
        path = scripts_dir / script.path
        if not path.is_file():
            problems.append((f"build.scripts[{i}].path", f"must name an existing file under include/scripts "
                                                         f"({script.path!r} not found)"))
        elif (actual := sha256_of(path)) != script.sha256:
            problems.append((f"build.scripts[{i}].sha256", f"must match the script's content (pinned "
                                                           f"{script.sha256[:12]}…, file has {actual[:12]}…); "
                                                           "re-pin it after reviewing the change"))
    if problems:
        raise DefinitionError(source or f"images/{definition.name}.yaml", problems)


def script_checksums(definitions: Iterable[ImageDefinition]) -> dict[str, str]:
    return {s.path: s.sha256 for d in definitions for s in d.scripts}
