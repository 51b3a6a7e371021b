"""Airflow's plugin manager imports every ``.py`` under plugins/ as a top-level module named by its file stem,
so a plugin module named like a standard-library module replaces it in ``sys.modules`` for the whole process:
an ``inspect.py`` once broke every task's rendered-field serialization (``inspect.getattr_static``)."""

from __future__ import annotations

import sys
from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_no_plugin_module_shadows_a_standard_library_module() -> None:
    stems = {p.stem: p.relative_to(PLUGINS) for p in PLUGINS.rglob("*.py") if p.stem != "__init__"}
    clashes = sorted(str(path) for stem, path in stems.items() if stem in sys.stdlib_module_names or stem == "__main__")
    assert clashes == [], f"rename these plugin modules, Airflow would import them over the standard library: {clashes}"
