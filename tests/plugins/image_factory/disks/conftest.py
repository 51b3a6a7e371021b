"""Disk files built once per test module (a few MiB each, under a second to build)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.plugins.image_factory.disks.builders import build_disk


@pytest.fixture(scope="module")
def disk_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``disk_factory(name, **build_disk_kwargs)``: the same arguments give the same (cached) file."""
    where = tmp_path_factory.mktemp("disks")
    made: dict[tuple[object, ...], Path] = {}

    def make(name: str, **kwargs: object) -> Path:
        key = (name, *sorted(kwargs.items()))
        if key not in made:
            made[key] = build_disk(where / name, **kwargs)  # type: ignore[arg-type]
        return made[key]

    return make
