"""The "Golden images" pages: rendering from a seeded lineage store, and the FastAPI app behind Airflow's login.

The family seeded: 1.0.0 (from the Marketplace) → 1.1.0 → 1.2.0, three generations; 1.1.1, a failed try
built from 1.0.0; 1.1.0 then revoked, so 1.2.0 is flagged as built from a revoked source. Another image's
version carries markup in every free-text field, to show it is escaped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from image_factory.lineage import page
from image_factory.lineage.store import LineageStore, summarize
from tests.plugins.image_factory.lineage.records import make_record, version_id

IMAGE = "debian12-web"
EVIL = "web<script>alert(1)</script>"
BASE = "/image-factory/lineage/"
SVG = "{http://www.w3.org/2000/svg}"


def vid(version: str) -> str:
    return version_id(IMAGE, version)


def seed(store: LineageStore) -> None:
    store.save(make_record(IMAGE, "1.0.0", run_id="r1", recorded_at="2026-11-01T10:00:00+00:00"))
    store.save(make_record(IMAGE, "1.1.0", parent=vid("1.0.0"), run_id="r2", trigger="schedule", triggered_by=None,
                           recorded_at="2026-11-02T10:00:00+00:00"))
    store.save(make_record(IMAGE, "1.1.1", parent=vid("1.0.0"), run_id="r3", failed_task="replicate",
                           recorded_at="2026-11-03T10:00:00+00:00"))
    store.save(make_record(IMAGE, "1.2.0", parent=vid("1.1.0"), run_id="r4", smoke_failures=["eastus"],
                           recorded_at="2026-11-04T10:00:00+00:00"))
    store.revoke(f"{IMAGE}@1.1.0", "CVE-2026-9999 <b>in openssl</b>")
    evil = make_record(EVIL, "2.0.0", run_id="r5", reason='"><img src=x onerror=alert(2)>',
                       triggered_by="<i>mallory</i>", recorded_at="2026-11-05T10:00:00+00:00")
    evil["smoke"][0]["checks"][0]["detail"] = "<iframe src=//evil>"
    evil["scripts"][0]["path"] = "linux/<svg onload=alert(3)>.sh"
    store.save(evil)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LineageStore]:
    s = LineageStore(f"sqlite:///{tmp_path / 'lineage.db'}")
    seed(s)
    try:
        yield s
    finally:
        s.close()


def svg_of(html: str) -> ET.Element:
    """The page's ancestry graph, parsed as XML (so it must be well formed)."""
    found = re.search(r"<svg .*?</svg>", html, re.S)
    assert found, "no inline SVG in the page"
    return ET.fromstring(found.group(0))


def nodes(svg: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-node"]: g for g in svg.iter(f"{SVG}g") if "data-node" in g.attrib}


def edges(svg: ET.Element) -> set[tuple[str, str]]:
    return {(p.attrib["data-from"], p.attrib["data-to"]) for p in svg.iter(f"{SVG}path") if p.get("class") == "edge"}


def links(svg: ET.Element) -> dict[str, str]:
    return {a.attrib["aria-label"]: a.attrib["href"] for a in svg.iter(f"{SVG}a")}


class Tags(HTMLParser):
    """Every start tag and attribute name of a page, as a browser's tokenizer sees them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: set[str] = set()
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.update(name for name, _ in attrs)


# rendering ---------------------------------------------------------------------------------------
def test_graph_draws_every_version_by_generation_with_an_edge_per_parent(store: LineageStore) -> None:
    family = [r for r in store.versions() if r["image"] == IMAGE]
    svg = ET.fromstring(page.ancestry_svg(family, base=BASE))
    drawn = nodes(svg)
    assert set(drawn) == {f"{IMAGE}@{v}" for v in ("1.0.0", "1.1.0", "1.1.1", "1.2.0")}
    assert edges(svg) == {(f"{IMAGE}@1.0.0", f"{IMAGE}@1.1.0"), (f"{IMAGE}@1.0.0", f"{IMAGE}@1.1.1"),
                          (f"{IMAGE}@1.1.0", f"{IMAGE}@1.2.0")}
    states = {n: g.attrib["data-state"] for n, g in drawn.items()}
    assert states == {f"{IMAGE}@1.0.0": "published", f"{IMAGE}@1.1.0": "revoked", f"{IMAGE}@1.1.1": "failed",
                      f"{IMAGE}@1.2.0": "source-revoked"}
    for name, g in drawn.items():  # coloured by state
        assert g.find(f"{SVG}rect").attrib["fill"] == page.COLOURS[states[name]][0]  # type: ignore[union-attr]
    x = {n: int(g.find(f"{SVG}rect").attrib["x"]) for n, g in drawn.items()}  # type: ignore[union-attr]
    assert x[f"{IMAGE}@1.0.0"] < x[f"{IMAGE}@1.1.0"] == x[f"{IMAGE}@1.1.1"] < x[f"{IMAGE}@1.2.0"]
    assert links(svg)[f"{IMAGE}@1.1.1"] == f"{BASE}versions/{IMAGE}/1.1.1"  # a click opens that version


def test_detail_graph_outlines_the_version_and_dims_what_is_off_its_line(store: LineageStore) -> None:
    ref = f"{IMAGE}@1.1.0"
    html = page.detail_page(store.get(ref), ancestors=store.ancestors(ref), descendants=store.descendants(ref),
                            records=store.versions(), base=BASE)
    drawn = nodes(svg_of(html))
    assert set(drawn) == {f"{IMAGE}@{v}" for v in ("1.0.0", "1.1.0", "1.1.1", "1.2.0")}  # not the other image
    assert "selected" in drawn[ref].attrib["class"].split()
    dimmed = {n for n, g in drawn.items() if "dimmed" in g.attrib["class"].split()}
    assert dimmed == {f"{IMAGE}@1.1.1"}  # a sibling: neither ancestor nor descendant
    assert "CVE-2026-9999 &lt;b&gt;in openssl&lt;/b&gt;" in html  # the revocation, escaped
    assert '<span class="package-count">4</span>' in html
    for stage in ("customise", "capture", "replicate"):
        assert f"<td>{stage}</td>" in html
    assert "linux/10-baseline.sh" in html and "nginx answers" in html


def test_a_parent_the_store_never_recorded_is_a_stub_without_a_link() -> None:
    orphan = make_record(IMAGE, "3.0.0", parent=vid("0.9.0"))
    svg = ET.fromstring(page.ancestry_svg([orphan], base=BASE))
    drawn = nodes(svg)
    assert drawn[f"{IMAGE}@0.9.0"].attrib["data-state"] == "unrecorded"
    assert edges(svg) == {(f"{IMAGE}@0.9.0", f"{IMAGE}@3.0.0")}
    assert set(links(svg)) == {f"{IMAGE}@3.0.0"}


def test_overview_lists_galleries_definitions_versions_regions_and_smoke(store: LineageStore) -> None:
    html = page.overview_page(store.versions(), base=BASE)
    assert "Gallery rg-golden-images/gal_golden" in html
    assert f"Image definition {IMAGE}" in html
    row = re.search(rf'<tr data-version="{IMAGE}@1.2.0">.*?</tr>', html, re.S)
    assert row, html
    cells = row.group(0)
    assert "westeurope: Completed (replicas 2)" in cells and "eastus: Completed (replicas 1)" in cells
    assert "westeurope: pass" in cells and "eastus: fail" in cells
    assert f"source revoked: {IMAGE}@1.1.0" in cells
    failed = re.search(rf'<tr data-version="{IMAGE}@1.1.1">.*?</tr>', html, re.S)
    assert failed and '<span class="badge failed">failed</span>' in failed.group(0)
    assert "schedule" in html and "api by admin" in html
    assert len(nodes(svg_of(html))) == 5  # the graph of every version


def test_markup_in_records_is_escaped_everywhere(store: LineageStore) -> None:
    ref = f"{EVIL}@2.0.0"
    pages = [page.overview_page(store.versions(), base=BASE),
             page.detail_page(store.get(ref), ancestors=[], descendants=[], records=store.versions(), base=BASE)]
    for html in pages:
        parsed = Tags(html)
        assert not {"script", "img", "iframe", "i", "b"} & set(parsed.tags), parsed.tags
        assert not {"onerror", "onload"} & parsed.attrs
        assert "web&lt;script&gt;alert(1)&lt;/script&gt;" in html
        svg_of(html)  # still well-formed
    assert "&lt;iframe src=//evil&gt;" in pages[1] and "&lt;svg onload=alert(3)&gt;" in pages[1]
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in pages[1]


# the app ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def auth_manager() -> Any:
    """Airflow's configured auth manager (the simple one), over a migrated metadata DB (it checks revoked tokens)."""
    from airflow.api_fastapi.app import init_auth_manager
    from airflow.utils import db

    db.initdb()
    return init_auth_manager()


def token(auth_manager: Any, role: str | None = "viewer") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(auth_manager.generate_jwt(SimpleAuthManagerUser(username="ada", role=role)))


@pytest.fixture
def client(store: LineageStore, monkeypatch: pytest.MonkeyPatch, auth_manager: Any) -> Iterator[TestClient]:
    """The app mounted at its prefix as Airflow mounts plugin apps, reading the seeded store through the hook."""
    from image_factory.lineage import webapp

    monkeypatch.setenv("IMAGE_FACTORY_LINEAGE_URL", store.url)
    outer = FastAPI()
    outer.mount(webapp.URL_PREFIX, webapp.app)
    with TestClient(outer) as c:
        yield c


PATHS = ["/", f"/versions/{IMAGE}/1.1.0", "/api/versions"]


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_requests_are_refused(client: TestClient, path: str) -> None:
    resp = client.get(BASE.rstrip("/") + path)
    assert resp.status_code == 401, resp.text
    assert "Golden images" not in resp.text and IMAGE not in resp.text


def test_bad_tokens_and_users_without_ui_access_are_refused(client: TestClient, auth_manager: Any) -> None:
    assert client.get(BASE, cookies={"_token": "not-a-jwt"}).status_code == 403
    assert client.get(BASE, headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert client.get(BASE, cookies={"_token": token(auth_manager, role=None)}).status_code == 403
    for docs in ("docs", "openapi.json", "redoc"):  # FastAPI serves these outside the app's dependencies
        assert client.get(BASE + docs, cookies={"_token": token(auth_manager)}).status_code == 404


def test_a_signed_in_user_sees_the_overview_and_a_version(client: TestClient, auth_manager: Any) -> None:
    client.cookies.set("_token", token(auth_manager))
    overview = client.get(BASE)
    assert overview.status_code == 200 and overview.headers["content-type"].startswith("text/html")
    assert f'<tr data-version="{IMAGE}@1.2.0">' in overview.text
    assert f'href="{BASE}versions/{IMAGE}/1.2.0"' in overview.text  # links stay under the mount

    detail = client.get(f"{BASE}versions/{IMAGE}/1.2.0")
    assert detail.status_code == 200
    drawn = nodes(svg_of(detail.text))
    assert "selected" in drawn[f"{IMAGE}@1.2.0"].attrib["class"].split()
    assert {n for n, g in drawn.items() if "dimmed" in g.attrib["class"].split()} == {f"{IMAGE}@1.1.1"}

    missing = client.get(f"{BASE}versions/{IMAGE}/9.9.9")
    assert missing.status_code == 404 and "no lineage record for debian12-web version 9.9.9" in missing.text


def test_api_versions_is_the_store_summary(client: TestClient, auth_manager: Any, store: LineageStore) -> None:
    headers = {"Authorization": f"Bearer {token(auth_manager)}"}
    everything = client.get(f"{BASE}api/versions", headers=headers)
    assert everything.status_code == 200
    assert everything.json() == {"versions": summarize(store.versions())}
    one = client.get(f"{BASE}api/versions", params={"image": IMAGE}, headers=headers).json()["versions"]
    assert [v["version"] for v in one] == ["1.0.0", "1.1.0", "1.1.1", "1.2.0"]
    assert one[1]["revoked"] is True and one[3]["smoke"] == {"eastus": False, "westeurope": True}


def test_the_plugin_mounts_the_app_and_adds_the_nav_entry() -> None:
    from image_factory_plugin import ImageFactoryPlugin

    from image_factory.lineage import webapp

    assert {"name": "golden_images", "app": webapp.app, "url_prefix": webapp.URL_PREFIX} in ImageFactoryPlugin.fastapi_apps
    view = next(v for v in ImageFactoryPlugin.external_views if v["name"] == "Golden images")
    assert view["destination"] == "nav" and view["href"] == BASE and view["url_route"]
