"""Image definitions that build on each other (generations), for DAG runs with ``dag.test()``.

Each generation is debian12-web published as its own gallery image definition, built from a
Marketplace image or from the previous generation's gallery versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GALLERY = ("rg-golden-images", "gal_golden")
MARKETPLACE = "  marketplace: {publisher: Debian, offer: debian-12, sku: 12-gen2, version: latest}"


def empty_include(tmp: Path) -> Path:
    """A copy of include/ (scripts, fleet settings) without any image definition."""
    include = tmp / "include"
    shutil.copytree(ROOT / "include", include)
    for p in (include / "images").glob("*.yaml"):
        p.unlink()
    return include


def write_generation(include: Path, name: str, source: str, extra: str = "") -> None:
    """An image definition like debian12-web, published as its own definition, built from ``source``."""
    text = (ROOT / "include" / "images" / "debian12-web.yaml").read_text()
    text = text.replace("name: debian12-web", f"name: {name}").replace("definition: debian12-web", f"definition: {name}")
    text = text.replace("sku: web", f"sku: {name}").replace("expect_output: image=debian12-web", f"expect_output: image={name}")
    text = text.replace(MARKETPLACE, source)
    text = text.replace("schedule: {patch_tuesday_offset_days: 1, time: \"02:00\"}\n", "")
    (include / "images" / f"{name}.yaml").write_text(text + extra)


def from_gallery(definition: str) -> str:
    return (f"  gallery_image_version: {{resource_group: {GALLERY[0]}, gallery: {GALLERY[1]}, "
            f"definition: {definition}, version: latest}}")


def run_image(include: Path, name: str, **conf: Any) -> Any:
    """``dag.test()`` of the image's DAG, built from the definitions in ``include``."""
    from image_factory.dag_factory import image_dags

    return image_dags(include / "images")[f"golden_{name}"].test(run_conf=conf or None)
