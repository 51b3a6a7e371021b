"""The lineage command line against a seeded SQLite store: in process, and as ``python -m ...cli`` and ``./factory``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from image_factory.lineage.cli import main
from image_factory.lineage.store import LineageStore, summarize
from tests.plugins.image_factory.lineage.records import make_record, version_id

ROOT = Path(__file__).resolve().parents[4]
BASE_PACKAGES = ["bash=5.2.15-2+b7", "curl=7.88.1-10", "openssl=3.0.11-1~deb12u1", "wget=1.21.3-1+b2"]
WEB_PACKAGES = ["bash=5.2.15-2+b7", "curl=7.88.1-10+deb12u8", "nginx=1.22.1-9", "openssl=3.0.15-1~deb12u1"]


@pytest.fixture
def seeded(tmp_path: Path) -> str:
    """debian12-base (Marketplace) -> debian12-web 1.0.0 (revoked) -> shop-app -> shop-api, and a failed web 1.0.1."""
    url = f"sqlite:///{tmp_path / 'lineage.db'}"
    store = LineageStore(url)
    store.save(make_record("debian12-base", "1.0.0", packages=BASE_PACKAGES, trigger="schedule", triggered_by=None))
    store.save(make_record("debian12-web", "1.0.0", parent=version_id("debian12-base", "1.0.0"), packages=WEB_PACKAGES,
                           run_id="manual__2026-11-20T10:00:00+00:00", reason="CVE-2026-1234"))
    store.save(make_record("debian12-web", "1.0.1", parent=version_id("debian12-base", "1.0.0"),
                           smoke_failures=["eastus"], run_id="manual__2026-11-21T09:00:00+00:00"))
    store.save(make_record("shop-app", "3.1.0", parent=version_id("debian12-web", "1.0.0")))
    store.save(make_record("shop-api", "0.9.0", parent=version_id("shop-app", "3.1.0")))
    store.revoke("debian12-web@1.0.0", "nginx leaks its status page", at="2026-11-22T08:00:00+00:00")
    store.close()
    return url


def run(url: str, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--store", url, *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def as_json(url: str, *argv: str) -> Any:
    code, out, err = run(url, *argv, "--json")
    assert (code, err) == (0, "")
    return json.loads(out)


def test_show_tells_the_whole_lineage(seeded: str) -> None:
    code, out, err = run(seeded, "show", "debian12-web@1.0.0")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "debian12-web@1.0.0  published"
    assert f"  artifact    {version_id('debian12-web', '1.0.0').lower()}" in lines
    assert "  mark        REVOKED 2026-11-22T08:00:00+00:00: nginx leaks its status page" in lines
    assert "  run         golden_debian12-web manual__2026-11-20T10:00:00+00:00 (trigger api by admin)" in lines
    assert "  reason      CVE-2026-1234" in lines
    assert (f"  source      gallery image version debian12-base@1.0.0 {version_id('debian12-base', '1.0.0').lower()}"
            " (requested latest)") in lines
    assert "  git commit  " + "a" * 40 in lines
    assert "    linux/20-nginx.sh  sha256 " + "2" * 64 in lines
    assert "  packages    4" in lines
    assert "    westeurope  replicas 2  Standard_LRS  Completed 100%" in lines
    assert "      pass  nginx answers: image=ok" in lines
    assert "capture 40s" in out and "customise 61.5s" in out and "smoke_test 35.75s" in out
    assert lines[-1] == "  ancestors   debian12-web@1.0.0 <- debian12-base@1.0.0"


def test_show_a_failed_marketplace_build(seeded: str) -> None:
    _, out, _ = run(seeded, "show", "debian12-web@1.0.1")
    assert out.splitlines()[0] == "debian12-web@1.0.1  failed at promote"
    assert "    eastus  FAIL" in out and "      FAIL  nginx answers: curl: (7) refused" in out
    _, base, _ = run(seeded, "show", version_id("debian12-base", "1.0.0"))  # by ARM id, as Azure spells it
    assert "  source      Marketplace Debian:debian-12:12-gen2 version 0.20251102.2 (requested latest)" in base
    assert "(trigger schedule)" in base and "  ancestors   none" in base
    _, api, _ = run(seeded, "show", "shop-api@0.9.0")
    assert "SOURCE REVOKED (by rg-golden-images/gal_golden/debian12-web/1.0.0)" in api
    assert "  ancestors   shop-api@0.9.0 <- shop-app@3.1.0 <- debian12-web@1.0.0 <- debian12-base@1.0.0" in api


def test_json_round_trips_the_store(seeded: str) -> None:
    store = LineageStore(seeded)
    try:
        assert as_json(seeded, "show", "debian12-web@1.0.0") == store.get("debian12-web@1.0.0")
        assert as_json(seeded, "list") == summarize(store.versions())
        assert as_json(seeded, "list", "debian12-web") == summarize(store.versions("debian12-web"))
    finally:
        store.close()
    tree = as_json(seeded, "descendants", "debian12-base@1.0.0")
    assert [(d["image"], d["version"], d["depth"]) for d in tree] == [
        ("debian12-web", "1.0.0", 1), ("debian12-web", "1.0.1", 1), ("shop-app", "3.1.0", 2), ("shop-api", "0.9.0", 3)]
    assert [a["version"] for a in as_json(seeded, "ancestors", "shop-api@0.9.0")] == ["3.1.0", "1.0.0", "1.0.0"]
    diff = as_json(seeded, "diff", "debian12-base@1.0.0", "debian12-web@1.0.0")
    assert diff["added"] == [{"name": "nginx", "version": "1.22.1-9"}]
    assert diff["removed"] == [{"name": "wget", "version": "1.21.3-1+b2"}]
    assert {c["name"] for c in diff["changed"]} == {"curl", "openssl"}


def test_diff_lists_added_removed_and_changed_with_counts(seeded: str) -> None:
    code, out, _ = run(seeded, "diff", "debian12-base@1.0.0", "debian12-web@1.0.0")
    assert code == 0
    assert out.splitlines() == [
        "packages debian12-base@1.0.0 -> debian12-web@1.0.0: 1 added, 1 removed, 2 changed",
        "+ nginx 1.22.1-9",
        "- wget 1.21.3-1+b2",
        "~ curl 7.88.1-10 -> 7.88.1-10+deb12u8",
        "~ openssl 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1",
    ]


def test_descendants_and_ancestors_are_indented_by_depth(seeded: str) -> None:
    _, out, _ = run(seeded, "descendants", "debian12-base@1.0.0")
    heads = [line.split("  /subscriptions")[0] for line in out.splitlines()]
    assert heads == ["debian12-web@1.0.0  published", "debian12-web@1.0.1  failed",
                     "  shop-app@3.1.0  published", "    shop-api@0.9.0  published"]
    assert out.splitlines()[0].endswith("REVOKED")
    _, out, _ = run(seeded, "ancestors", "shop-api@0.9.0")
    assert [line.split("  /")[0] for line in out.splitlines()] == [
        "shop-app@3.1.0  published", "  debian12-web@1.0.0  published", "    debian12-base@1.0.0  published"]
    assert run(seeded, "ancestors", "debian12-base@1.0.0")[1] == (
        "debian12-base@1.0.0: no ancestors (built from a Marketplace image)\n")


def test_list_gives_one_line_per_version(seeded: str) -> None:
    _, out, _ = run(seeded, "list", "debian12-web")
    assert out.splitlines() == [
        "debian12-web@1.0.0  published  trigger=api  regions=westeurope=Completed,eastus=Completed  "
        "smoke=eastus=pass,westeurope=pass  REVOKED",
        "debian12-web@1.0.1  failed  trigger=api  regions=westeurope=Completed,eastus=Completed  "
        "smoke=eastus=fail,westeurope=pass",
    ]
    assert run(seeded, "list", "nothing")[1] == "no versions recorded for nothing\n"


def test_from_marketplace_and_containing(seeded: str) -> None:
    _, out, _ = run(seeded, "from-marketplace", "debian:DEBIAN-12:12-Gen2")
    assert [line.split()[0] for line in out.splitlines()] == ["debian12-base@1.0.0"]
    assert [r["version"] for r in as_json(seeded, "from-marketplace", "Debian:debian-12:12-gen2:0.20251102.2")] == ["1.0.0"]
    assert run(seeded, "from-marketplace", "Debian:debian-12:12-gen2:0.1")[1] == (
        "no versions built from Debian:debian-12:12-gen2:0.1\n")
    _, out, _ = run(seeded, "containing", "nginx")
    assert [(line.split()[0], line.split()[-1]) for line in out.splitlines()] == [("debian12-web@1.0.0", "nginx=1.22.1-9")]
    rows = as_json(seeded, "containing", "openssl=3.0.11-1~deb12u1")
    assert [(r["image"], r["package"]) for r in rows] == [("debian12-base", "openssl=3.0.11-1~deb12u1")]


@pytest.mark.parametrize(("argv", "message"), [
    (["show", "nope@1.0.0"], "lineage: no lineage record for nope version 1.0.0\n"),
    (["show", "debian12-web"], "lineage: 'debian12-web': name a version as IMAGE@VERSION or by its resource id\n"),
    (["diff", "debian12-web@1.0.0", "debian12-web@9.9.9"], "lineage: no lineage record for debian12-web version 9.9.9\n"),
    (["descendants", "/subscriptions/x/versions/1"], "lineage: no lineage record for /subscriptions/x/versions/1\n"),
    (["from-marketplace", "Debian:debian-12"],
     "lineage: 'Debian:debian-12': name the Marketplace image as PUBLISHER:OFFER:SKU or PUBLISHER:OFFER:SKU:VERSION\n"),
    (["containing", "=1.0"], "lineage: '=1.0': name the package as PACKAGE or PACKAGE=VERSION\n"),
])
def test_unknown_refs_exit_2_with_one_line(seeded: str, argv: list[str], message: str) -> None:
    assert run(seeded, *argv) == (2, "", message)
    assert run(seeded, *argv, "--json") == (2, "", message)


def test_a_store_it_cannot_open_is_one_line_without_the_password() -> None:
    code, out, err = run("postgresql+psycopg://lineage:s3cret@127.0.0.1:1/lineage", "list")
    assert (code, out) == (1, "") and len(err.splitlines()) == 1
    assert err.startswith("lineage: cannot open the store postgresql+psycopg://lineage:***@127.0.0.1:1/lineage: ")
    code, out, err = run("not a url s3cret", "list")
    assert (code, out) == (2, "") and err.startswith("lineage: the store URL is not a SQLAlchemy URL") and "s3cret" not in err


def test_the_store_defaults_to_the_factorys(seeded: str, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", seeded)
    assert main(["list", "shop-app"]) == 0
    assert capsys.readouterr().out.startswith("shop-app@3.1.0  published")


def _env(seeded: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "IMAGE_FACTORY_LINEAGE_URL": seeded}


def test_python_dash_m(seeded: str) -> None:
    # no lineage/__main__.py: Airflow's plugin loader would import it as ``__main__`` in the scheduler
    env = _env(seeded)
    shown = subprocess.run([sys.executable, "-m", "image_factory.lineage.cli", "--store", seeded, "show", "shop-app@3.1.0",
                            "--json"], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["parent_id"] == version_id("debian12-web", "1.0.0").lower()
    missing = subprocess.run([sys.executable, "-m", "image_factory.lineage.cli", "show", "shop-app@9"],
                             capture_output=True, text=True, env=env, timeout=120, check=False)
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr.strip().splitlines() == ["lineage: no lineage record for shop-app version 9"]


def test_factory_lineage(seeded: str) -> None:
    done = subprocess.run([str(ROOT / "factory"), "lineage", "descendants", "shop-app@3.1.0"], capture_output=True,
                          text=True, env=_env(seeded), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("shop-api@0.9.0  published  ")


def test_revoke_refuses_an_empty_reason_before_touching_anything(seeded: str) -> None:
    code, out, err = run(seeded, "revoke", "debian12-web@1.0.0", "--reason", "  ")
    assert code == 2 and out == ""
    assert err.strip() == "lineage: reason: must not be empty (say why the version is revoked)"
    code, before, _ = run(seeded, "show", "shop-app@3.1.0", "--json")
    assert code == 0 and json.loads(before)["revoked"] is None
    assert run(seeded, "revoke", "shop-app@3.1.0", "--reason", "")[0] == 2
    assert run(seeded, "show", "shop-app@3.1.0", "--json")[1] == before  # nothing was written
