"""The "Golden images" page in the Airflow UI, driven by a real browser against a running Airflow API server.

The lineage store (a SQLite file the API server reads through IMAGE_FACTORY_LINEAGE_URL) is seeded with
records as runs write them: three generations of debian12-web, a failed try and a revoked version. Headless
Chromium (Debian's package, driven by Playwright) logs in, opens "Golden images" from the navigation, reads
the gallery table (versions, regions with their replication state, smoke results per region), opens a
version and finds the ancestry graph with its parent and child. Without a login the page is refused.
Screenshots of each step go to UI_ARTIFACTS_DIR (default test-artifacts/ui/<test>/), kept after the run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Browser, FrameLocator, Locator, expect

from devstack.airflow import AirflowStack
from image_factory.lineage.store import LineageStore
from image_factory.lineage.webapp import URL_PREFIX
from tests.e2e.test_ui_trigger_form import Shots, browser, browser_shots, chromium, log_in
from tests.localazure import free_port
from tests.plugins.image_factory.lineage.records import make_record, version_id

__all__ = ["browser", "chromium"]  # the browser fixtures, shared with the trigger-form test

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(600)]

IMAGE = "debian12-web"


def seed(url: str) -> None:
    """1.0.0 → 1.1.0 → 1.2.0 (eastus smoke failed: not promoted), 1.1.1 a failed try from 1.0.0; 1.1.0 revoked."""
    store = LineageStore(url)
    try:
        store.save(make_record(IMAGE, "1.0.0", run_id="r1", recorded_at="2026-11-01T10:00:00+00:00"))
        store.save(make_record(IMAGE, "1.1.0", parent=version_id(IMAGE, "1.0.0"), run_id="r2", trigger="schedule",
                               triggered_by=None, recorded_at="2026-11-02T10:00:00+00:00"))
        store.save(make_record(IMAGE, "1.1.1", parent=version_id(IMAGE, "1.0.0"), run_id="r3",
                               failed_task="replicate", recorded_at="2026-11-03T10:00:00+00:00"))
        store.save(make_record(IMAGE, "1.2.0", parent=version_id(IMAGE, "1.1.0"), run_id="r4",
                               smoke_failures=["eastus"], recorded_at="2026-11-04T10:00:00+00:00"))
        store.revoke(f"{IMAGE}@1.1.0", "CVE-2026-9999 in openssl")
    finally:
        store.close()


@pytest.fixture(scope="module")
def stack(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    """Airflow's API server alone (the page needs no scheduler), reading the seeded store; stopped by its PID."""
    tmp = tmp_path_factory.mktemp("ui-lineage")
    url = f"sqlite:///{tmp / 'lineage.db'}"
    seed(url)
    s = AirflowStack(tmp / "airflow", port=free_port(), extra_env={"IMAGE_FACTORY_LINEAGE_URL": url})
    try:
        s.start(components=("api-server",))
        yield s
    finally:
        s.stop()


@pytest.fixture
def ui(browser: Browser, stack: AirflowStack, request: pytest.FixtureRequest) -> Iterator[Shots]:
    with browser_shots(browser, stack.url, request.node.name, {"width": 1600, "height": 1400}) as shots:
        yield shots


def open_golden_images(shots: Shots) -> FrameLocator:
    """From the navigation to the plugin's page, which the UI shows in an iframe."""
    page = shots.page
    page.get_by_role("link", name="Golden images").click()
    expect(page).to_have_url(re.compile(rf"/plugin/golden-images({URL_PREFIX}/)?$"))  # the UI follows the frame
    frame = page.frame_locator(f'iframe[src*="{URL_PREFIX}"]')
    expect(frame.get_by_role("heading", name="Golden images", exact=True)).to_be_visible()
    return frame


def version_row(frame: FrameLocator, version: str) -> Locator:
    return frame.locator(f'tr[data-version="{IMAGE}@{version}"]')


def test_golden_images_page_shows_versions_and_their_ancestry(ui: Shots, stack: AirflowStack) -> None:
    page = ui.page
    log_in(ui, stack)
    frame = open_golden_images(ui)
    expect(frame.get_by_role("heading", name="Gallery rg-golden-images/gal_golden")).to_be_visible()
    expect(frame.get_by_role("heading", name=f"Image definition {IMAGE}")).to_be_visible()
    expect(frame.locator("table.versions tbody tr")).to_have_count(4)
    newest = version_row(frame, "1.2.0")
    expect(newest).to_contain_text("westeurope: Completed (replicas 2)")
    expect(newest).to_contain_text("eastus: Completed (replicas 1)")
    expect(newest.locator(".badge.pass")).to_have_text(["westeurope: pass"])
    expect(newest.locator(".badge.fail")).to_have_text(["eastus: fail"])
    expect(newest).to_contain_text(f"source revoked: {IMAGE}@1.1.0")
    expect(version_row(frame, "1.1.1").locator(".badge.failed")).to_have_text("failed")
    expect(version_row(frame, "1.1.0").locator(".badge.revoked")).to_contain_text("CVE-2026-9999 in openssl")
    expect(version_row(frame, "1.1.0")).to_contain_text("schedule")
    expect(version_row(frame, "1.0.0").locator(".badge.published")).to_have_text("published")
    expect(frame.locator("svg.ancestry g[data-node]")).to_have_count(4)
    ui.take("overview")

    version_row(frame, "1.1.0").get_by_role("link", name="1.1.0", exact=True).click()
    expect(frame.get_by_role("heading", name=f"{IMAGE}@1.1.0", exact=True)).to_be_visible()
    graph = frame.locator("svg.ancestry")
    expect(graph.locator(f'g.selected[data-node="{IMAGE}@1.1.0"]')).to_be_visible()
    expect(graph.locator(f'g[data-node="{IMAGE}@1.1.0"]')).to_have_attribute("data-state", "revoked")
    expect(graph.locator(f'g[data-node="{IMAGE}@1.0.0"]')).to_have_attribute("data-state", "published")
    expect(graph.locator(f'g[data-node="{IMAGE}@1.2.0"]')).to_have_attribute("data-state", "source-revoked")
    expect(graph.locator(f'path.edge[data-from="{IMAGE}@1.0.0"][data-to="{IMAGE}@1.1.0"]')).to_have_count(1)
    expect(graph.locator(f'path.edge[data-from="{IMAGE}@1.1.0"][data-to="{IMAGE}@1.2.0"]')).to_have_count(1)
    dimmed = graph.locator("g.dimmed")  # off the line: neither an ancestor nor a descendant
    expect(dimmed).to_have_attribute("data-node", f"{IMAGE}@1.1.1")
    expect(dimmed).to_have_attribute("data-state", "failed")
    expect(frame.locator("table.smoke")).to_contain_text("nginx answers")
    ui.take("version-1.1.0")

    graph.locator(f'a[aria-label="{IMAGE}@1.2.0"]').click()  # a node opens its version
    expect(frame.get_by_role("heading", name=f"{IMAGE}@1.2.0", exact=True)).to_be_visible()
    expect(frame.locator("svg.ancestry g.selected")).to_have_attribute("data-node", f"{IMAGE}@1.2.0")
    expect(frame.locator("table.smoke tbody tr").filter(has_text="eastus").locator(".badge").first).to_have_text("fail")
    # still inside the Airflow UI, which follows the page in its own URL: a reload comes back to this version
    expect(page).to_have_url(re.compile(rf"/plugin/golden-images{URL_PREFIX}/versions/{IMAGE}/1\.2\.0$"))
    ui.take("version-1.2.0")
    page.reload()
    expect(page.frame_locator(f'iframe[src*="{URL_PREFIX}"]').get_by_role("heading", name=f"{IMAGE}@1.2.0")).to_be_visible()


def test_page_is_refused_without_a_login(ui: Shots, stack: AirflowStack) -> None:
    for path in ("/", f"/versions/{IMAGE}/1.1.0", "/api/versions"):
        resp = requests.get(f"{stack.url}{URL_PREFIX}{path}", timeout=30)
        assert resp.status_code == 401, (path, resp.status_code, resp.text[:200])
        assert IMAGE not in resp.text
    forged = requests.get(f"{stack.url}{URL_PREFIX}/", cookies={"_token": "forged"}, timeout=30)
    assert forged.status_code == 403 and IMAGE not in forged.text
    ui.page.goto(f"{URL_PREFIX}/")
    expect(ui.page.locator("body")).to_contain_text("Not authenticated")
    expect(ui.page.locator("table.versions")).to_have_count(0)
    ui.take("anonymous-refused")
