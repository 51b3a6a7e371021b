"""Only images that follow `latest`, have a promoted version and whose source moved on are rebuilt."""

from __future__ import annotations

from image_factory.source_watch import SourceState, newest_promoted, rebuilds


def state(image: str, current: str | None, built: str | None, follows: bool = True) -> SourceState:
    return SourceState(image=image, dag_id=f"golden_{image}", follows_latest=follows, current_source=current,
                       built_from=built, built_version="1.0.3")


def test_only_moved_sources_are_rebuilt() -> None:
    states = [state("moved", "Debian:debian-12:12:0.2", "Debian:debian-12:12:0.1"),
              state("same", "Debian:debian-12:12:0.2", "Debian:debian-12:12:0.2"),
              state("pinned", "x:y:z:2", "x:y:z:1", follows=False),
              state("never-built", "x:y:z:2", None),
              state("busy", "x:y:z:2", "x:y:z:1")]
    todo = rebuilds(states, busy=["golden_busy"])
    assert [t["trigger_dag_id"] for t in todo] == ["golden_moved"]
    assert "latest is now Debian:debian-12:12:0.2" in todo[0]["conf"]["reason"]
    assert set(todo[0]["conf"]) == {"reason"}  # only keys the image DAGs accept


def test_newest_promoted_ignores_failed_and_excluded_versions() -> None:
    versions = [{"name": "1.0.9", "provisioning_state": "Succeeded", "exclude_from_latest": False},
                {"name": "1.0.10", "provisioning_state": "Succeeded", "exclude_from_latest": True},
                {"name": "1.0.11", "provisioning_state": "Failed", "exclude_from_latest": False},
                {"name": "1.0.2", "provisioning_state": "Succeeded", "exclude_from_latest": False}]
    assert newest_promoted(versions)["name"] == "1.0.9"  # type: ignore[index]
    assert newest_promoted([]) is None
