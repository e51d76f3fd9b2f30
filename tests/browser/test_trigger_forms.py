"""
The example DAGs' trigger forms, filled and submitted in Chromium as a person does.

Each run must succeed, and what the person typed must reach the emulator exactly as typed:
the tests compare the DAG run's ``conf`` (what the UI sent) and the emulator's record of every
task created (what the provider sent to MPS) with the form's contents.
"""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import expect

from tests.browser.airflow_ui import (
    choose,
    field,
    open_trigger_form,
    required_fields,
    submit_trigger_form,
    switch_on,
    trigger_button,
    type_into,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.browser.conftest import DocsScreenshots
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.browser

UI_DAG = "example_mps_ui_triggered"
BATCH_DAG = "example_mps_batch_catalogue"
DEFAULT_PROMPT = "A cozy reading nook by a rainy window, warm lamp light, watercolor"
#: The form's defaults, as the UI sends them in the run's ``conf``.
UI_FORM_DEFAULTS = {
    "prompt": DEFAULT_PROMPT,
    "model_name": "GEM",
    "negative_prompt": None,
    "enhance_prompt": False,
    "image_urls": None,
    "aspect_ratio": "1:1",
    "resolution": "2K",
}


def _finished(airflow: AirflowCluster, dag_id: str, run: dict[str, Any]) -> None:
    watch = airflow.wait_for_run(dag_id, run["dag_run_id"])
    assert watch.state == "success", airflow.explain(dag_id, run["dag_run_id"])


def _created_requests(emulator: EmulatorHandle) -> list[dict[str, Any]]:
    return [task["Request"] for task in emulator.tasks()]


def test_ui_example_form_marks_only_prompt_model_and_switch_required(
    page: Page, airflow: AirflowCluster
) -> None:
    airflow.wait_for_dags([UI_DAG])
    dialog = open_trigger_form(page, UI_DAG)

    assert required_fields(dialog) == ["Prompt", "Model", "Enhance prompt"]
    expect(trigger_button(dialog)).to_be_enabled()
    # Optional fields a person fills and empties again leave the form valid.
    type_into(dialog, "negative_prompt", "text")
    field(dialog, "negative_prompt").fill("")
    type_into(dialog, "image_urls", "https://example.com/a.png")
    field(dialog, "image_urls").fill("")
    field(dialog, "image_urls").blur()
    expect(trigger_button(dialog)).to_be_enabled()
    # A required field emptied disables Trigger until it is filled again.
    field(dialog, "prompt").fill("")
    expect(trigger_button(dialog)).to_be_disabled()
    type_into(dialog, "prompt", "A red kite over the dunes")
    expect(trigger_button(dialog)).to_be_enabled()


def test_ui_example_triggered_with_the_form_defaults_draws_the_default_prompt(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle, docs_screenshots: DocsScreenshots
) -> None:
    airflow.wait_for_dags([UI_DAG])
    dialog = open_trigger_form(page, UI_DAG)
    docs_screenshots.save("trigger-form.png", dialog)

    run = submit_trigger_form(page, dialog, UI_DAG)
    _finished(airflow, UI_DAG, run)

    assert run["conf"] == UI_FORM_DEFAULTS
    assert _created_requests(mps_emulator) == [
        {
            "Prompt": DEFAULT_PROMPT,
            "ModelName": "GEM",
            "EnhancePrompt": False,
            "ExtraParameters": {"AspectRatio": "1:1", "Resolution": "2K"},
        }
    ]


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("一只戴着宇航员头盔的柴犬, watercolor", id="multibyte"),
        pytest.param("A lighthouse at dusk,\nseen from a rowing boat — ink & wash 🌊", id="two-lines-emoji"),
    ],
)
def test_ui_example_sends_a_typed_prompt_to_mps_exactly_as_typed(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle, prompt: str
) -> None:
    airflow.wait_for_dags([UI_DAG])
    dialog = open_trigger_form(page, UI_DAG)
    type_into(dialog, "prompt", prompt)

    run = submit_trigger_form(page, dialog, UI_DAG)
    _finished(airflow, UI_DAG, run)

    assert run["conf"] == {**UI_FORM_DEFAULTS, "prompt": prompt}
    assert _created_requests(mps_emulator) == [
        {
            "Prompt": prompt,
            "ModelName": "GEM",
            "EnhancePrompt": False,
            "ExtraParameters": {"AspectRatio": "1:1", "Resolution": "2K"},
        }
    ]


def test_ui_example_sends_the_optional_fields_a_person_fills(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    airflow.wait_for_dags([UI_DAG])
    dialog = open_trigger_form(page, UI_DAG)
    type_into(dialog, "prompt", "A ceramic teapot on a linen cloth")
    choose(page, dialog, "model_name", "Kling")
    type_into(dialog, "negative_prompt", "text, watermark")
    switch_on(dialog, "enhance_prompt")
    type_into(dialog, "image_urls", "https://example.com/teapot.webp\nhttps://example.com/cloth.png")
    type_into(dialog, "aspect_ratio", "16:9")
    field(dialog, "resolution").fill("")  # the model's default

    run = submit_trigger_form(page, dialog, UI_DAG)
    _finished(airflow, UI_DAG, run)

    assert run["conf"] == {
        "prompt": "A ceramic teapot on a linen cloth",
        "model_name": "Kling",
        "negative_prompt": "text, watermark",
        "enhance_prompt": True,
        "image_urls": ["https://example.com/teapot.webp", "https://example.com/cloth.png"],
        "aspect_ratio": "16:9",
        "resolution": None,
    }
    assert _created_requests(mps_emulator) == [
        {
            "Prompt": "A ceramic teapot on a linen cloth",
            "ModelName": "Kling",
            "NegativePrompt": "text, watermark",
            "EnhancePrompt": True,
            "ImageInfos": [
                {"ImageUrl": "https://example.com/teapot.webp"},
                {"ImageUrl": "https://example.com/cloth.png"},
            ],
            "ExtraParameters": {"AspectRatio": "16:9"},
        }
    ]


def test_batch_example_runs_from_its_form_with_the_defaults_and_with_a_typed_row_count(
    page: Page, airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    with (airflow.dags_folder / "data" / "catalogue.csv").open(newline="", encoding="utf-8") as catalogue:
        prompts = [
            f"Studio product photo of a {row['colour']} {row['name'].lower()} made of {row['material']}, "
            f"on {row['setting']}, soft natural light"
            for row in csv.DictReader(catalogue)
        ]
    airflow.wait_for_dags([BATCH_DAG])

    dialog = open_trigger_form(page, BATCH_DAG)
    assert required_fields(dialog) == []
    whole = submit_trigger_form(page, dialog, BATCH_DAG)
    dialog = open_trigger_form(page, BATCH_DAG)
    type_into(dialog, "limit", "2")
    first_two = submit_trigger_form(page, dialog, BATCH_DAG)
    _finished(airflow, BATCH_DAG, whole)
    _finished(airflow, BATCH_DAG, first_two)

    assert (whole["conf"], first_two["conf"]) == ({"limit": None}, {"limit": 2})
    requests = {task["TaskId"]: task["Request"] for task in mps_emulator.tasks()}
    shared = {
        "ModelName": "GEM",
        "NegativePrompt": "text, watermark, people",
        "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
    }
    for run, wanted in ((whole, prompts), (first_two, prompts[:2])):
        task_ids = airflow.xcom(BATCH_DAG, run["dag_run_id"], "generate_catalogue_images")
        assert [requests[task_id] for task_id in task_ids] == [{"Prompt": p, **shared} for p in wanted]
    assert len(requests) == len(prompts) + 2
