"""Names derive from the run deterministically and fit Azure's limits."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from image_factory.naming import RunNames, run_blob_metadata, run_tags, run_tags_of_blob


def test_names_are_deterministic_per_run_and_distinct_between_runs() -> None:
    a = RunNames.for_run("debian12-web", "golden_debian12-web", "manual__2026-11-25T10:00:00+00:00")
    again = RunNames.for_run("debian12-web", "golden_debian12-web", "manual__2026-11-25T10:00:00+00:00")
    other = RunNames.for_run("debian12-web", "golden_debian12-web", "scheduled__2026-12-09T02:00:00+00:00")
    assert a == again and a.resource_group == again.resource_group
    assert a.resource_group != other.resource_group and a.vm() != other.vm()
    assert re.fullmatch(r"rg-imgf-debian12-web-[0-9a-f]{8}", a.resource_group)


def test_computer_names_fit_windows_limits() -> None:
    names = RunNames.for_run("windows2022-base", "golden_windows2022-base", "x" * 250)
    for role in ("build", "smoke-westeurope"):
        name = names.computer_name(role)
        assert len(name) <= 15 and re.fullmatch(r"[a-z0-9-]+", name)


def test_tags_carry_run_and_expiry() -> None:
    created = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    tags = run_tags("debian12-web", "manual__1", created, timedelta(hours=6))
    assert tags["project"] == "golden-image-factory" and tags["run-id"] == "manual__1"
    assert tags["expiry"] == "2026-11-25T16:00:00+00:00"


def test_a_staging_blob_carries_its_runs_tags_as_metadata_and_gives_them_back() -> None:
    tags = run_tags("debian12-imported", "manual__2", datetime(2026, 11, 25, 10, 0, tzinfo=UTC), timedelta(hours=12))
    meta = run_blob_metadata(tags)
    assert meta == {"imagefactory_image": "debian12-imported", "imagefactory_run_id": "manual__2",
                    "imagefactory_expiry": "2026-11-25T22:00:00+00:00"}
    assert all(re.fullmatch(r"[a-z_]+", k) for k in meta)  # metadata names must be C# identifiers
    back = run_tags_of_blob({**meta, "imagefactory_tool": "x"})
    assert back == {k: tags[k] for k in ("project", "image", "run-id", "expiry")}
    assert run_tags_of_blob({"imagefactory_tool": "x", "imagefactory_image": "debian12-imported"}) == {}  # no run
