"""Version numbers: computed from the gallery, int32 parts, never reused, retries reuse their own."""

from __future__ import annotations

import pytest

from image_factory.versioning import Existing, Version, VersionError, next_version


def test_first_version_and_patch_bump() -> None:
    assert next_version([], run_id="r1").version == "1.0.0"
    got = next_version([Existing("1.0.0"), Existing("1.0.10"), Existing("1.0.9")], run_id="r2")
    assert got.version == "1.0.11" and not got.reused
    assert next_version([Existing("1.2.3")], run_id="r", bump="minor").version == "1.3.0"
    assert next_version([Existing("1.2.3")], run_id="r", bump="major").version == "2.0.0"


def test_override_must_be_greater_than_the_newest() -> None:
    assert next_version([Existing("1.0.3")], run_id="r", override="1.1.0").version == "1.1.0"
    with pytest.raises(VersionError, match=r"version: must be greater than .* 1\.0\.3 \(got 1\.0\.3\)"):
        next_version([Existing("1.0.3")], run_id="r", override="1.0.3")
    with pytest.raises(VersionError, match=r"Major\.Minor\.Patch"):
        next_version([], run_id="r", override="1.0")


def test_parts_are_int32() -> None:
    assert Version.parse("2147483647.0.0").major == 2147483647
    with pytest.raises(VersionError, match="at most 2147483647"):
        Version.parse("2147483648.0.0")
    with pytest.raises(VersionError, match="no next patch"):
        next_version([Existing("1.0.2147483647")], run_id="r")


def test_a_retry_reuses_its_run_version_and_replaces_a_failed_one() -> None:
    existing = [Existing("1.0.0", run_id="old"), Existing("1.0.1", run_id="mine")]
    again = next_version(existing, run_id="mine")
    assert (again.version, again.reused, again.replace_failed) == ("1.0.1", True, False)
    failed = next_version([Existing("1.0.0"), Existing("1.0.1", "Failed", run_id="mine")], run_id="mine")
    assert (failed.version, failed.reused, failed.replace_failed) == ("1.0.1", False, True)
