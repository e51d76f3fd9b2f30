"""
Fixtures of the browser suite: Chromium, driven by Playwright, against a real Airflow on loopback.

One Airflow (API server, scheduler, DAG processor, triggerer; ``tests/integration/airflow_cluster``)
and one Chromium serve the whole session.  The default MPS connection points at the session's
emulator, which runs in this pytest process and is reset before every test (``mps_emulator``).

The tests run only when the ``browser`` marker is selected (``make test-browser``, i.e.
``pytest -m browser``); otherwise they are deselected, so ``make test`` needs no browser.

* Chromium: ``MPS_BROWSER_EXECUTABLE``, else ``chromium`` on ``PATH`` (Debian's package;
  ``scripts/setup-browser.sh`` installs it).  Playwright's own browser download is not used.
* A failed test leaves a screenshot of each of its pages in ``tests/browser/artifacts/``
  (``MPS_BROWSER_ARTIFACTS`` to change it).
* ``MPS_DOCS_SCREENSHOTS=docs/images`` makes the tests save the pictures the docs show.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from tests.integration.airflow_cluster import EXAMPLE_DAGS, provider_cluster

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from playwright.sync_api import Browser, FloatRect, Locator, Page, ViewportSize

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
    from tests.integration.airflow_cluster import AirflowCluster

BROWSER_MARKER = "browser"

#: Flags for Debian's Chromium in a container: no sandbox, no GPU, and none of its background
#: traffic (update checks, sync, QUIC probes), which otherwise gets connections refused in bulk.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
#: Tall enough that the trigger and connection dialogs fit without scrolling.
VIEWPORT: ViewportSize = {"width": 1280, "height": 1500}
#: Seconds a UI element may take to appear: the API server shares two cores with the workers.
UI_TIMEOUT_SECONDS = 30

BROWSER_TESTS = Path(__file__).resolve().parent
ARTIFACTS = Path(os.environ.get("MPS_BROWSER_ARTIFACTS") or BROWSER_TESTS / "artifacts")
DOCS_SCREENSHOTS_ENV = "MPS_DOCS_SCREENSHOTS"

#: Rows of ``dags_examples/data/catalogue.csv`` the suite's Airflow holds, so the batch example's
#: defaults (the whole catalogue) make a run of a few seconds rather than 300 images.
CATALOGUE_ROWS = 3


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{BROWSER_MARKER}: drives Chromium against a real Airflow (make test-browser)"
    )


def _browser_selected(config: pytest.Config) -> bool:
    """Whether ``-m`` asks for the browser tests (``browser``, ``browser and not ...``, ...)."""
    return re.search(rf"(?<!not )\b{BROWSER_MARKER}\b", config.getoption("markexpr") or "") is not None


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Without Playwright installed, skip importing the browser test modules unless they are asked for."""
    if collection_path.parent != BROWSER_TESTS or _browser_selected(config):
        return None
    if importlib.util.find_spec("playwright") is None:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the browser tests out unless the ``browser`` marker is selected."""
    if _browser_selected(config):
        return
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        (left_out if item.get_closest_marker(BROWSER_MARKER) else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell that the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report


# ---------------------------------------------------------------------------------- Airflow


@pytest.fixture(scope="session")
def browser_airflow(
    tmp_path_factory: pytest.TempPathFactory, mps_emulator_server: ThreadedEmulatorServer
) -> Iterator[AirflowCluster]:
    """
    The session's Airflow, with the example DAGs, the Test Connection button enabled, and
    ``tencentcloud_mps_default`` pointing at the session's emulator.

    Its catalogue (``data/catalogue.csv`` in the DAGs folder) keeps the first
    :data:`CATALOGUE_ROWS` rows of the example's.
    """
    overrides = tmp_path_factory.mktemp("dag-overrides")
    (overrides / "data").mkdir()
    with (EXAMPLE_DAGS / "data" / "catalogue.csv").open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))[: CATALOGUE_ROWS + 1]
    with (overrides / "data" / "catalogue.csv").open("w", newline="", encoding="utf-8") as target:
        csv.writer(target).writerows(rows)
    cluster = provider_cluster(
        tmp_path_factory.mktemp("airflow"),
        mps_connection=EmulatorHandle.from_server(mps_emulator_server).airflow_connection(),
        image_base=tmp_path_factory.mktemp("mps-images").as_uri(),
        extra_env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"},
        extra_dags=[overrides],
    )
    with cluster:
        yield cluster


@pytest.fixture
def airflow(browser_airflow: AirflowCluster, mps_emulator: EmulatorHandle) -> Iterator[AirflowCluster]:
    """
    The session's Airflow, healthy, with a freshly reset emulator behind its MPS connection.

    Runs a test leaves unfinished are failed afterwards, so they cannot reach the emulator later.
    """
    browser_airflow.wait_until_healthy(timeout=120)
    yield browser_airflow
    browser_airflow.fail_unfinished_runs()


# ---------------------------------------------------------------------------------- Chromium


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Path of the Chromium the tests drive."""
    executable = os.environ.get("MPS_BROWSER_EXECUTABLE") or shutil.which("chromium")
    if not executable or not Path(executable).exists():
        pytest.fail(
            "The browser tests need Debian's Chromium: run scripts/setup-browser.sh "
            "(or set MPS_BROWSER_EXECUTABLE to a Chromium binary).",
            pytrace=False,
        )
    return executable


@pytest.fixture(scope="session")
def browser(chromium_executable: str) -> Iterator[Browser]:
    """One headless Chromium for the session."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_SECONDS * 1000)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_executable, args=list(CHROMIUM_ARGS))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, airflow: AirflowCluster, request: pytest.FixtureRequest) -> Iterator[Page]:
    """
    A fresh browser tab on the Airflow UI (relative URLs resolve against it), English, UTC.

    When the test fails, every page it opened is saved to :data:`ARTIFACTS` as a PNG.
    """
    context = browser.new_context(
        base_url=airflow.base_url, viewport=VIEWPORT, locale="en-US", timezone_id="UTC"
    )
    context.set_default_timeout(UI_TIMEOUT_SECONDS * 1000)
    tab = context.new_page()
    try:
        yield tab
    finally:
        if any(
            getattr(getattr(request.node, f"report_{when}", None), "failed", False)
            for when in ("setup", "call")
        ):
            _save_failure_screenshots(request.node.nodeid, context.pages)
        context.close()


def _save_failure_screenshots(nodeid: str, pages: list[Page]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])
    for index, tab in enumerate(pages):
        path = ARTIFACTS / (f"{stem}.png" if index == 0 else f"{stem}-{index}.png")
        try:
            tab.screenshot(path=str(path), full_page=True)
        except Exception as error:  # a crashed tab must not hide the test's own failure
            print(f"Could not save a screenshot of {tab.url}: {error}")
        else:
            print(f"Screenshot of {tab.url} at the failure: {path}")


# ---------------------------------------------------------------------------------- docs pictures


class DocsScreenshots:
    """
    Saves the pictures the docs show, when ``MPS_DOCS_SCREENSHOTS`` names a folder; else nothing.

    :param folder: where the PNG files go, ``None`` to save nothing.
    """

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def save(self, name: str, target: Page | Locator) -> None:
        """Save a screenshot of ``target`` (a whole tab, or one element such as a dialog) as ``name``."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            target.screenshot(path=str(self.folder / name), animations="disabled")

    def save_top(self, name: str, tab: Page, height: int) -> None:
        """Save the top ``height`` pixels of ``tab`` as ``name``."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            clip: FloatRect = {
                "x": 0,
                "y": 0,
                "width": (tab.viewport_size or VIEWPORT)["width"],
                "height": height,
            }
            tab.screenshot(path=str(self.folder / name), animations="disabled", clip=clip)

    def save_bytes(self, name: str, content: bytes) -> None:
        """Save ``content`` (e.g. an image the UI opened) as ``name``."""
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / name).write_bytes(content)


@pytest.fixture(scope="session")
def docs_screenshots() -> DocsScreenshots:
    """Where the tests save the docs' pictures (``MPS_DOCS_SCREENSHOTS``), if anywhere."""
    folder = os.environ.get(DOCS_SCREENSHOTS_ENV)
    return DocsScreenshots(Path(folder) if folder else None)
