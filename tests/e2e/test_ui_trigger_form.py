"""An image DAG's trigger form in the Airflow UI, driven by a real browser.

Headless Chromium (Debian's chromium package, driven by Playwright; no browser of Playwright's own) logs in
through the simple auth manager's login page, opens golden_debian12-web, fills its Trigger form (the DAG's
params: a reason, a region subset picked in the multi-select of known regions, replicas), triggers, and
follows the run in the UI until its state badge says success; the REST API then shows the run got exactly
what was typed. An invalid version shows the validation error in the form and creates no run; that form has
no reason typed, as a reason and plan only are optional (not marked required, Trigger enabled). Screenshots
of each step go to UI_ARTIFACTS_DIR (default test-artifacts/ui/<test>/), kept after the run.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from devstack.airflow import ADMIN, AirflowStack
from image_factory.definition_schema import KNOWN_REGIONS
from tests.e2e.airflow_pipeline import DAG_ID, IMAGE, Pipeline, gallery_hook, running_pipeline
from tests.localazure import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.guests("simulated"), pytest.mark.timeout(900)]

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("UI_ARTIFACTS_DIR") or ROOT / "test-artifacts" / "ui")
RUN_TIMEOUT = 420.0
UI_REFRESH_MS = 30_000  # the run page refreshes itself every few seconds while the run is active
REGIONS = ["westeurope", "northeurope"]  # not the definition's targets (westeurope x1, eastus x2)
REPLICAS = 3
REASON = "UI test: form-triggered build"
TIMEOUT_MS = 30_000  # for any one page to load and react, on a busy 2-core machine
expect.set_options(timeout=TIMEOUT_MS)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's Chromium: a bare checkout without it skips; CI (which installs it) fails instead."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = f"no Chromium at {CHROMIUM}: apt-get install chromium (./factory install does)"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def pipeline(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The local Azure (simulated guests) and Airflow; started only when there is a browser to drive them."""
    with running_pipeline(tmp_path_factory.mktemp("ui-trigger"), azure_env={"LOCAL_AZURE_LINUX_RUNTIME": "simulated"}) as p:
        yield p


@dataclass
class Shots:
    """Numbered full-page screenshots of one test, in its own folder under ARTIFACTS."""

    page: Page
    folder: Path
    taken: int = 0

    def take(self, step: str) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{step}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def browser_shots(browser: Browser, base_url: str, name: str, viewport: dict[str, int]) -> Iterator[Shots]:
    """A fresh browser context on the Airflow UI, screenshots in ARTIFACTS/<name>; its last screen is kept too
    (the one to look at on a failure)."""
    folder = ARTIFACTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    context = browser.new_context(base_url=base_url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    shots = Shots(context.new_page(), folder)
    try:
        yield shots
    finally:
        try:
            shots.take("last")
        finally:
            context.close()


@pytest.fixture
def ui(browser: Browser, pipeline: Pipeline, request: pytest.FixtureRequest) -> Iterator[Shots]:
    # tall enough that the whole trigger form fits in one screenshot
    with browser_shots(browser, pipeline.stack.url, request.node.name, {"width": 1400, "height": 2000}) as shots:
        yield shots


# the steps a person takes ------------------------------------------------------------------------
def log_in(shots: Shots, stack: AirflowStack) -> None:
    """Through the simple auth manager's login page, where the UI sends a visitor without a session."""
    page = shots.page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.get_by_label("Username").fill(ADMIN)
    page.get_by_label("Password").fill(stack.password())
    shots.take("login")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Dags", exact=True)).to_be_visible()
    expect(page).not_to_have_url(re.compile(r"/auth/login"))


def open_trigger_form(shots: Shots) -> Locator:
    """From the Dags list to the image DAG's page, then its Trigger dialog (with the run params loaded)."""
    page = shots.page
    page.get_by_role("link", name="Dags", exact=True).click()
    # the DAG's own link (the list may also link the DAG's name to its latest run's task)
    page.locator(f'a[href$="/dags/{DAG_ID}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}$"))
    trigger = page.get_by_role("button", name="Trigger Dag")
    expect(trigger).to_have_count(1)  # the DAG's page has replaced the list (one Trigger button per DAG)
    trigger.click()
    dialog = page.get_by_role("dialog").filter(has=page.get_by_role("heading", name=re.compile(f"Trigger Dag.*{DAG_ID}")))
    expect(param(dialog, "Reason")).to_be_visible()
    return dialog


def param(dialog: Locator, title: str) -> Locator:
    """One run param's row in the form, by the title a person reads (Airflow 3.3 does not tie the label to its
    input, so the input has no accessible name: find the row, then the input in it by role)."""
    label = dialog.page.get_by_text(re.compile(rf"^{re.escape(title)}\s*\*?\s*$"))
    return dialog.get_by_role("group").filter(has=label)


def choose(dialog: Locator, title: str, values: list[str]) -> None:
    """Pick values in a multi-select as a person does: open it, type the start of a name, click the option."""
    box = param(dialog, title).get_by_role("combobox")
    for value in values:
        box.click()
        box.press_sequentially(value[:5])
        dialog.page.get_by_role("option", name=value, exact=True).click()


def trigger_button(dialog: Locator) -> Locator:
    return dialog.get_by_role("button", name="Trigger", exact=True)


def run_count(p: Pipeline) -> int:
    return int(p.stack.api("GET", f"dags/{DAG_ID}/dagRuns", p.token).json()["total_entries"])


def replicas_by_region(p: Pipeline, version: str) -> dict[str, int]:
    """The published gallery version's target regions and replica counts, read back from Azure."""
    from image_factory.pipeline.build import load_definition

    d = load_definition(IMAGE)
    with gallery_hook(p.emu) as hook:
        v = hook.compute.gallery_image_versions.get(d.gallery_resource_group, d.gallery_name, d.definition, version)
    return {t.name.replace(" ", "").lower(): t.regional_replica_count for t in v.publishing_profile.target_regions}


# tests --------------------------------------------------------------------------------------------
def test_trigger_form_starts_a_run_with_the_typed_params(ui: Shots, pipeline: Pipeline) -> None:
    page = ui.page
    log_in(ui, pipeline.stack)
    dialog = open_trigger_form(ui)
    expect(dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")).to_be_checked()
    param(dialog, "Reason").get_by_role("textbox").fill(REASON)
    regions = param(dialog, "Target regions")
    regions.get_by_role("combobox").click()
    expect(page.get_by_role("option")).to_have_text(list(KNOWN_REGIONS))  # a list to pick from, not a text box
    ui.take("regions-offered")
    dialog.get_by_role("heading").first.click()  # away from the open list, which closes it
    expect(page.get_by_role("option")).to_have_count(0)
    choose(dialog, "Target regions", REGIONS)
    for region in REGIONS:
        expect(regions.get_by_text(region, exact=True)).to_be_visible()  # shown as chosen
    param(dialog, "Replicas per region").get_by_role("spinbutton").fill(str(REPLICAS))
    ui.take("form-filled")
    trigger_button(dialog).click()

    # the UI opens the new run's page; its header badge follows the run's state
    expect(page).to_have_url(re.compile(rf"/dags/{DAG_ID}/runs/[^/]+$"))
    run_id = unquote(page.url.rsplit("/runs/", 1)[1])
    header = page.get_by_test_id("header-card")
    expect(header.get_by_role("heading", name=run_id, exact=True)).to_be_visible()
    ui.take("run-started")
    assert pipeline.wait_finished(run_id, RUN_TIMEOUT) == "success", pipeline.states(run_id)
    expect(header.get_by_test_id("state-badge")).to_have_text("Success", timeout=UI_REFRESH_MS)
    ui.take("run-succeeded")

    run = pipeline.stack.api("GET", f"dags/{DAG_ID}/dagRuns/{run_id}", pipeline.token).json()
    assert run["triggered_by"] == "ui" and run["triggering_user_name"] == ADMIN, run
    assert run["conf"] == {"version": None, "bump": "patch", "regions": REGIONS, "replicas": REPLICAS,
                           "source_version": None, "plan_only": False, "reason": REASON}, run["conf"]
    summary = pipeline.report(run_id)
    assert list(summary["regions"]) == REGIONS, summary["regions"]
    assert replicas_by_region(pipeline, summary["version"]) == dict.fromkeys(REGIONS, REPLICAS)
    # the lineage record says who started it, and from where (the scheduler's listener saw the UI's trigger)
    from image_factory.hooks.lineage import DEFAULT_FILE
    from image_factory.lineage.store import LineageStore

    rec = LineageStore(f"sqlite:///{pipeline.stack.home / DEFAULT_FILE}").get(summary["version_id"])
    assert (rec["run"]["trigger"], rec["run"]["triggered_by"], rec["run"]["reason"]) == ("ui", ADMIN, REASON)
    assert [r["name"] for r in rec["regions"]] == REGIONS and all(r["replicas"] == REPLICAS for r in rec["regions"])


def test_invalid_version_shows_the_error_and_creates_no_run(ui: Shots, pipeline: Pipeline) -> None:
    log_in(ui, pipeline.stack)
    before = run_count(pipeline)
    dialog = open_trigger_form(ui)
    for optional in ("Reason", "Plan only"):
        expect(param(dialog, optional).locator("label[data-scope=field]")).to_have_text(optional)  # no required *
    expect(param(dialog, "Reason").get_by_role("textbox")).to_have_value("")
    expect(param(dialog, "Plan only").get_by_role("checkbox")).not_to_be_checked()
    expect(trigger_button(dialog)).to_be_enabled()  # no reason typed: nothing stops a trigger
    param(dialog, "Version override").get_by_role("textbox").fill("1.2")
    trigger_button(dialog).click()

    expect(dialog.get_by_text(re.compile(r"Invalid input for param version: '1\.2' does not match"))).to_be_visible()
    # the UI may render its toaster twice (one per layout root): any one showing the error will do
    expect(ui.page.get_by_role("status").filter(has_text="Failed to Trigger Dag").first).to_be_visible()
    ui.take("version-refused")
    expect(ui.page).to_have_url(re.compile(rf"/dags/{DAG_ID}$"))  # still on the form: no run page opened
    assert run_count(pipeline) == before, "a refused trigger must not create a run"
