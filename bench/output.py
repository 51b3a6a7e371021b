"""How a benchmark ends: the report as text, optionally the definitions of its figures and a JSON copy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def publish(report: Mapping[str, Any], text: str, definitions: Mapping[str, str], *, show_definitions: bool,
            json_path: Path | None) -> int:
    """Print and save the report; the exit code says whether the measured run itself succeeded."""
    print(text)
    if show_definitions:
        for name, meaning in definitions.items():
            print(f"- {name}: {meaning}")
    if json_path:
        json_path.write_text(json.dumps(report, indent=2, default=str))
    return 0 if report["state"] == "success" else 1
