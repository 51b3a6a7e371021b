"""What a run compares with the newest published version, and when a scheduled rebuild may skip publishing."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from image_factory.changes import (
    TAG_SCRIPTS,
    TAG_UPDATES,
    UNKNOWN,
    compare,
    decide,
    policy,
    scripts_digest,
    source_tag,
    updates_count,
    updates_tag,
)
from image_factory.definitions import Script

SOURCE = "Debian:debian-12:12-gen2:0.20250316.2062"
BASE = Script("linux/10-baseline.sh", "a" * 64)
NGINX = Script("linux/20-nginx.sh", "b" * 64)
SCRIPTS = scripts_digest([BASE, NGINX])
UPDATES = updates_tag([("libc6", "2.36-9+deb12u9"), ("openssl", "3.0.15-1~deb12u1")])


def version(name: str, *, source: str = SOURCE, scripts: str | None = SCRIPTS, updates: str | None = UPDATES,
            run: str = "scheduled__2026-01-14", state: str = "Succeeded", excluded: bool = False) -> dict[str, Any]:
    tags = {"factory-run-id": run, "source": source}
    if scripts is not None:
        tags[TAG_SCRIPTS] = scripts
    if updates is not None:
        tags[TAG_UPDATES] = updates
    return {"name": name, "provisioning_state": state, "exclude_from_latest": excluded, "tags": tags}


def check(**found: Any) -> dict[str, Any]:
    may_skip, why = policy(False, "scheduled")
    return {"may_skip": may_skip, "policy": why, **found}


# digests ---------------------------------------------------------------------------------------------
def test_scripts_digest_follows_order_paths_and_content() -> None:
    assert len(SCRIPTS) == 64 and int(SCRIPTS, 16) >= 0
    assert scripts_digest([BASE, NGINX]) == SCRIPTS  # deterministic
    assert scripts_digest([NGINX, BASE]) != SCRIPTS  # the order is part of the image
    assert scripts_digest([BASE, Script(NGINX.path, "c" * 64)]) != SCRIPTS
    assert scripts_digest([BASE, Script("linux/21-nginx.sh", NGINX.sha256)]) != SCRIPTS
    assert scripts_digest([]) == hashlib.sha256(b"").hexdigest()


def test_many_scripts_still_fit_one_azure_tag_value() -> None:
    many = [Script(f"linux/{i:03d}-{'x' * 60}.sh", f"{i:064x}") for i in range(300)]
    assert len(scripts_digest(many)) == 64  # tag values may be 256 characters


def test_updates_tag_counts_and_ignores_order_and_repeats() -> None:
    pairs = [("libc6", "2.36-9+deb12u9"), ("openssl", "3.0.15-1~deb12u1")]
    assert updates_tag(reversed(pairs)) == UPDATES == updates_tag(pairs + pairs[:1])
    assert updates_count(UPDATES) == 2 and len(UPDATES) <= 256
    assert updates_tag([]).startswith("0:") and updates_count(updates_tag([])) == 0
    assert updates_tag([("libc6", "2.36-9+deb12u10"), pairs[1]]) != UPDATES  # a newer version is a change
    assert updates_count(UNKNOWN) is None and updates_count(None) is None


def test_source_tag_is_the_urn_or_the_id() -> None:
    assert source_tag({"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "0.20250316.2062"}) \
        == SOURCE
    long_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/" + "9" * 300
    assert source_tag({"id": long_id}) == long_id[:256]


# comparing with the gallery --------------------------------------------------------------------------
def test_the_newest_promoted_version_of_another_run_is_the_one_compared() -> None:
    versions = [version("1.0.2", updates="1:old"), version("1.0.3"),
                version("1.0.4", excluded=True, source="other"),  # its smoke test failed: never published
                version("1.0.5", state="Failed"), version("1.0.6", run="manual__this-run", source="other")]
    found = compare(versions, run_id="manual__this-run", source=SOURCE, scripts=SCRIPTS)
    assert found == {"candidate": True, "against": "1.0.3", "against_updates": UPDATES,
                     "detail": f"source {SOURCE} same as version 1.0.3, scripts unchanged"}


@pytest.mark.parametrize(("versions", "words"), [
    ([], "no published version to compare with"),
    ([version("1.0.3", source="Debian:debian-12:12-gen2:0.20250113.1997")],
     f"source changed: {SOURCE}, version 1.0.3 was built from Debian:debian-12:12-gen2:0.20250113.1997"),
    ([version("1.0.3", scripts=scripts_digest([BASE]))], "scripts changed since version 1.0.3"),
    ([version("1.0.3", scripts=None)], "version 1.0.3 has no record of its scripts"),
])
def test_a_changed_or_unknown_source_or_scripts_is_no_candidate(versions: list[dict[str, Any]], words: str) -> None:
    found = compare(versions, run_id="scheduled__x", source=SOURCE, scripts=SCRIPTS)
    assert found["candidate"] is False and found["detail"] == words


def test_gallery_image_ids_compare_without_case() -> None:
    src = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/galleries/g/images/base/versions/1.0.0"
    found = compare([version("2.0.0", source=src.lower())], run_id="r", source=src, scripts=SCRIPTS)
    assert found["candidate"] is True


# policy and decision --------------------------------------------------------------------------------
def test_only_scheduled_runs_of_definitions_that_opt_in_may_skip() -> None:
    assert policy(True, "scheduled") == (False, "schedule.publish_when_unchanged is true (the default): every "
                                                "rebuild publishes")
    may, why = policy(False, "manual")
    assert not may and why.startswith("a manual run (UI or REST API) always publishes")
    assert policy(False, "operator_triggered") == (False, "a run of type operator_triggered always publishes; only "
                                                          "scheduled patch rebuilds skip when nothing changed")
    assert not policy(False, "backfill")[0]
    assert policy(False, "scheduled")[0]


def test_nothing_changed_stops_publishing_and_says_exactly_why() -> None:
    found = compare([version("1.0.3")], run_id="scheduled__x", source=SOURCE, scripts=SCRIPTS)
    decision = decide(check(**found), UPDATES)
    assert decision == {"publish": False, "reason": f"source {SOURCE} same as version 1.0.3, scripts unchanged, no "
                                                    "package updates (the guest is offered the same 2 upgrade(s) "
                                                    "as when 1.0.3 was built)"}
    empty = updates_tag([])
    found = compare([version("1.0.3", updates=empty)], run_id="scheduled__x", source=SOURCE, scripts=SCRIPTS)
    assert decide(check(**found), empty)["reason"].endswith("no package updates (none pending in the guest)")


@pytest.mark.parametrize(("against_updates", "updates", "unknown", "words"), [
    (UPDATES, updates_tag([("libc6", "2.36-9+deb12u10")]), "",
     "package updates since version 1.0.3: the guest is offered 1 upgrade(s) now, a different set from the 2"),
    (UPDATES, UNKNOWN, "apt-get update exited 100: E: mirror unreachable",
     "pending package updates are unknown (apt-get update exited 100: E: mirror unreachable): publishing"),
    (UPDATES, None, "", "pending package updates are unknown (not checked): publishing"),
    (None, UPDATES, "", "version 1.0.3 has no record of its pending package updates"),
    (UNKNOWN, UPDATES, "", "version 1.0.3 has no record of its pending package updates"),
])
def test_new_or_unknown_package_updates_publish(against_updates: str | None, updates: str | None, unknown: str,
                                                words: str) -> None:
    found = compare([version("1.0.3", updates=against_updates)], run_id="scheduled__x", source=SOURCE,
                    scripts=SCRIPTS)
    decision = decide(check(**found), updates, unknown)
    assert decision["publish"] is True and words in decision["reason"], decision


def test_a_manual_run_or_the_default_publishes_even_when_nothing_changed() -> None:
    found = compare([version("1.0.3")], run_id="manual__x", source=SOURCE, scripts=SCRIPTS)
    for may_skip, why in (policy(False, "manual"), policy(True, "scheduled")):
        decision = decide({"may_skip": may_skip, "policy": why, **found}, UPDATES)
        assert decision == {"publish": True, "reason": why}
