"""
The extra links of a finished MPS task, as a person sees and clicks them in the task's details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.airflow_ui import open_task_details

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.browser.conftest import DocsScreenshots
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.browser

UI_DAG = "example_mps_ui_triggered"


def test_finished_task_shows_both_links_and_the_image_link_opens_the_png(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle, docs_screenshots: DocsScreenshots
) -> None:
    airflow.wait_for_dags([UI_DAG])
    airflow.unpause(UI_DAG)
    run_id = airflow.trigger(UI_DAG)
    assert airflow.wait_for_run(UI_DAG, run_id).state == "success", airflow.explain(UI_DAG, run_id)
    (mps_task,) = mps_emulator.tasks()
    image_url = mps_task["ImageUrls"][0]

    open_task_details(page, UI_DAG, run_id, "create_image")
    image_link = page.get_by_role("link", name="MPS Generated Image", exact=True)
    console_link = page.get_by_role("link", name="MPS Console", exact=True)
    expect(image_link).to_be_visible()
    expect(console_link).to_be_visible()
    expect(image_link).to_have_attribute("href", image_url)
    expect(console_link).to_have_attribute(
        "href", airflow.extra_links(UI_DAG, run_id, "create_image")["MPS Console"]
    )
    assert mps_task["TaskId"] in (console_link.get_attribute("href") or "")
    docs_screenshots.save_top("task-extra-links.png", page, height=520)

    with (
        page.context.expect_page() as new_tab,
        page.context.expect_event("response", lambda response: response.url == image_url) as loaded,
    ):
        image_link.click()

    image = loaded.value
    assert new_tab.value.url == image_url
    assert (image.status, image.headers["content-type"]) == (200, "image/png")
    assert [(d["TaskId"], d["StatusCode"]) for d in mps_emulator.downloads()] == [(mps_task["TaskId"], 200)]
    assert image.body() == httpx.get(image_url, timeout=10).content
    docs_screenshots.save_bytes("generated-image.png", image.body())
