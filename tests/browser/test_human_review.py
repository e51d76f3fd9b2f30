"""
Human review in the Airflow UI, as a person does it, and ``make ui``, as a person starts it.

A person triggers ``example_mps_human_review`` from its form, opens the review under Required
Actions, sees every candidate image loaded, keeps two of three (exactly those two are saved, each
with its Asset event) or rejects them all with a revised prompt (the next prompt MPS receives is
the revised one, and the first run saves nothing).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx
import psutil
import pytest
from playwright.sync_api import expect

from airflow_provider_mps.transfers.mps_to_object_storage import safe_path_segment
from tests.browser.airflow_ui import open_trigger_form, submit_trigger_form, type_into
from tests.integration.airflow_cluster import REPO_ROOT, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.browser.conftest import DocsScreenshots
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.browser

DAG_ID = "example_mps_human_review"
SUBJECT = "Keep which of 3 generated images?"
PROMPT = "A ceramic teapot, three-quarter view, soft window light"
REVISED = "A ceramic teapot seen from above, on slate"


def _awaiting_review(airflow: AirflowCluster, run_id: str) -> None:
    """Wait until the run's review task waits for a person."""
    airflow.wait_for(
        lambda: airflow.task_instances(DAG_ID, run_id).get("review", {}).get("state") == "awaiting_input",
        timeout=180,
        what=lambda: f"the review of {run_id} to await input: {airflow.explain(DAG_ID, run_id)}",
    )


def _open_review(page: Page, run_id: str) -> None:
    page.goto(f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/review/required_actions")
    expect(page.get_by_text(SUBJECT)).to_be_visible()
    expect(page.get_by_role("button", name="Respond")).to_be_visible()


def _loaded_images(page: Page) -> list[tuple[str, int, str]]:
    """``(alt, naturalWidth, src)`` of every candidate image, once each has finished loading."""
    candidates = page.locator("img[alt^='Candidate']")
    expect(candidates).to_have_count(3)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll(\"img[alt^='Candidate']\")).every(i => i.complete)"
    )
    return [
        tuple(row) for row in candidates.evaluate_all("els => els.map(i => [i.alt, i.naturalWidth, i.src])")
    ]


def _respond(page: Page, options: list[str], revised_prompt: str | None = None) -> dict[str, Any]:
    """Pick ``options`` in the multi-select, type the revised prompt, click Respond; return the answer."""
    box = page.get_by_role("combobox", name="Select one or multiple values")
    for option in options:
        box.click()
        page.get_by_role("option", name=option, exact=True).click()
    if revised_prompt is not None:
        page.locator("#element_revised_prompt").fill(revised_prompt)
    with page.expect_response(
        lambda response: response.request.method == "PATCH" and response.url.endswith("/hitlDetails")
    ) as answer:
        page.get_by_role("button", name="Respond").click()
    assert answer.value.ok, f"The UI's answer was refused: {answer.value.status} {answer.value.text()}"
    return answer.value.json()


def _trigger(page: Page, airflow: AirflowCluster) -> str:
    airflow.wait_for_dags([DAG_ID])
    dialog = open_trigger_form(page, DAG_ID)
    type_into(dialog, "prompt", PROMPT)
    return submit_trigger_form(page, dialog, DAG_ID)["dag_run_id"]


def test_a_person_sees_every_candidate_keeps_two_of_three_and_exactly_those_are_saved(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle, docs_screenshots: DocsScreenshots
) -> None:
    run_id = _trigger(page, airflow)
    _awaiting_review(airflow, run_id)
    task_ids = airflow.xcom(DAG_ID, run_id, "create_candidates")

    _open_review(page, run_id)
    images = _loaded_images(page)
    docs_screenshots.save_top("human-review.png", page, 1500)

    assert images == [
        (f"Candidate {n}, image 1", 384, f"{mps_emulator.endpoint}/images/{task_id}/0.png")
        for n, task_id in enumerate(task_ids, start=1)
    ]
    assert [task["Request"] for task in mps_emulator.tasks()] == [
        {"Prompt": PROMPT, "ModelName": "GEM", "OutputImageCount": 1}
    ] * 3
    answer = _respond(page, ["Candidate 1", "Candidate 3"])
    watch = airflow.wait_for_run(DAG_ID, run_id, timeout=180)

    assert (watch.state, answer["chosen_options"]) == ("success", ["Candidate 1", "Candidate 3"]), (
        airflow.explain(DAG_ID, run_id)
    )
    assert airflow.xcom(DAG_ID, run_id, "review") == [task_ids[0], task_ids[2]]
    run_folder = (
        Path(urlsplit(airflow.env["AIRFLOW_VAR_MPS_IMAGE_BASE"]).path) / DAG_ID / safe_path_segment(run_id)
    )
    saved = sorted(f"{path.parent.name}/{path.name}" for path in run_folder.rglob("*") if path.is_file())
    assert saved == sorted([f"{task_ids[0]}/0.png", f"{task_ids[2]}/0.png"])
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id})
    assert sorted(event["extra"]["mps_task_id"] for event in events["asset_events"]) == sorted(
        [task_ids[0], task_ids[2]]
    )
    assert {event["uri"] for event in events["asset_events"]} == {f"mps://{DAG_ID}/approved"}


def test_rejecting_all_with_a_revised_prompt_saves_nothing_and_the_next_run_draws_the_revision(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    run_id = _trigger(page, airflow)
    _awaiting_review(airflow, run_id)
    _open_review(page, run_id)
    assert [width for _alt, width, _src in _loaded_images(page)] == [384, 384, 384]

    _respond(page, ["Reject all"], REVISED)
    watch = airflow.wait_for_run(DAG_ID, run_id, timeout=180)
    [rerun] = [run for run in airflow.dag_runs(DAG_ID) if run["conf"].get("prompt") == REVISED]
    _awaiting_review(airflow, rerun["dag_run_id"])

    assert (watch.state, airflow.task_instances(DAG_ID, run_id)["save_chosen"]["state"]) == (
        "success",
        "skipped",
    )
    assert airflow.xcom(DAG_ID, run_id, "review") == []
    assert rerun["conf"] == {"prompt": REVISED, "model_name": "GEM", "candidates": 3}
    assert [task["Request"]["Prompt"] for task in mps_emulator.tasks()] == [PROMPT] * 3 + [REVISED] * 3
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id})
    assert events["asset_events"] == []


def test_make_ui_serves_every_example_and_stops_cleanly_on_ctrl_c(browser: Browser, tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update({"MPS_UI_PORT": str(port), "MPS_UI_EMULATOR_PORT": "0", "MPS_UI_DIR": str(tmp_path)})
    output = tmp_path / "make-ui.out"
    with output.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "scripts" / "ui.py")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 300
        while "Press Ctrl-C to stop." not in output.read_text():
            assert process.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(1)
        printed = output.read_text()
        url = re.search(r"Airflow UI: +(\S+)", printed).group(1)  # type: ignore[union-attr]
        user, password = re.search(r"Login: +(\S+) / (\S+)", printed).groups()  # type: ignore[union-attr]
        token = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}).json()
        dags = httpx.get(
            f"{url}/api/v2/dags", headers={"Authorization": f"Bearer {token['access_token']}"}
        ).json()
        context = browser.new_context(base_url=url)
        tab = context.new_page()
        tab.goto(f"/dags/{DAG_ID}")  # the login page, which leads back here
        tab.get_by_label("Username").fill(user)
        tab.get_by_label("Password").fill(password)
        tab.keyboard.press("Enter")
        expect(tab.get_by_role("button", name="Trigger Dag")).to_be_visible()
        context.close()

        assert url == f"http://127.0.0.1:{port}"
        assert sorted(dag["dag_id"] for dag in dags["dags"]) == sorted(
            path.stem for path in (REPO_ROOT / "dags_examples").glob("example_*.py")
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert output.read_text().endswith("SIGINT: stopping Airflow and the emulator\nStopped.\n")
        home = str(tmp_path / "airflow")
        left = [p.pid for p in psutil.process_iter() if _airflow_home_of(p) == home]
        assert left == []
    finally:
        if process.poll() is None:
            process.kill()


def _airflow_home_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("AIRFLOW_HOME")
    except psutil.Error:
        return None
