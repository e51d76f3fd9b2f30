"""
The scheduled example emits OpenLineage events naming the saved image and the MPS task.

Runs with ``apache-airflow-providers-openlineage`` installed (the main ``.venv``): the events go to a
file transport and are read back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pendulum
import pytest

from airflow_provider_mps.transfers.mps_to_object_storage import safe_path_segment
from tests.conftest import EXAMPLE_DAGS, run_dag

pytest.importorskip("airflow.providers.openlineage")

if TYPE_CHECKING:
    from pathlib import Path

DAG_ID = "example_mps_scheduled"


@pytest.fixture
def scheduled_dag(airflow_home: Any) -> Any:
    from importlib import import_module

    from tests.test_example_dags import DAGBAG_MODULE

    bag = import_module(DAGBAG_MODULE).DagBag(dag_folder=str(EXAMPLE_DAGS / f"{DAG_ID}.py"))
    return bag.get_dag(DAG_ID)


def worker_hostname(run: Any, task_id: str) -> str:
    """The host Airflow recorded for the task's try: local files are named under it."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(
            select(TaskInstance.hostname).where(
                TaskInstance.dag_id == DAG_ID,
                TaskInstance.run_id == run.run_id,
                TaskInstance.task_id == task_id,
            )
        )


def completes(events: list[dict], task_id: str) -> list[dict]:
    return [
        event
        for event in events
        if event["eventType"] == "COMPLETE" and event["job"]["name"] == f"{DAG_ID}.{task_id}"
    ]


def run_scheduled_example(dag: Any, mps_conn: Any, image_base: Path, monkeypatch: Any) -> tuple[Any, dict]:
    """Run the scheduled example once, saving to ``image_base``; return the run and the task MPS created."""
    mps_conn.configure(wait_seconds=0, run_seconds=0)
    monkeypatch.setenv("AIRFLOW_VAR_MPS_IMAGE_BASE", f"file://{image_base}")

    run = run_dag(dag, logical_date=pendulum.datetime(2025, 3, 1, tz="UTC"))

    assert run.state == "success"
    [created] = mps_conn.tasks()
    return run, created


def saved_image_output(run: Any, image_base: Path, mps_task_id: str) -> tuple[str, str, int, int]:
    """The namespace, name, size and file count the save event's output must carry."""
    image = f"{DAG_ID}/{safe_path_segment(run.run_id)}/{mps_task_id}/0.png"
    return (
        f"file://{worker_hostname(run, 'save_images')}",
        f"{image_base}/{image}",
        (image_base / image).stat().st_size,
        1,
    )


def output_fields(output: dict) -> tuple[str, str, int, int]:
    statistics = output["outputFacets"]["outputStatistics"]
    return (output["namespace"], output["name"], statistics["size"], statistics["fileCount"])


def test_scheduled_example_emits_the_mps_task_and_the_saved_image_without_the_prompt(
    scheduled_dag, mps_conn, lineage_events, tmp_path, monkeypatch
):
    image_base = tmp_path / "images"
    run, created = run_scheduled_example(scheduled_dag, mps_conn, image_base, monkeypatch)

    mps_task_id, prompt = created["TaskId"], created["Request"]["Prompt"]
    events = lineage_events()
    [create_event] = completes(events, "create_image")
    [save_event] = completes(events, "save_images")

    assert create_event["outputs"] == []
    assert create_event["run"]["facets"]["externalQuery"]["externalQueryId"] == mps_task_id
    assert create_event["run"]["facets"]["externalQuery"]["source"] == "tencentcloud-mps"
    create_facet = create_event["run"]["facets"]["tencentcloudMps_aigcImage"]
    # No wait, no output_image_count: the model's and the service's defaults are not guessed.
    assert {key: value for key, value in create_facet.items() if not key.startswith("_")} == {
        "taskId": mps_task_id,
        "modelName": "GEM",
    }

    assert [output_fields(output) for output in save_event["outputs"]] == [
        saved_image_output(run, image_base, mps_task_id)
    ]
    save_facet = save_event["run"]["facets"]["tencentcloudMps_aigcImage"]
    assert {key: value for key, value in save_facet.items() if not key.startswith("_")} == {
        "taskId": mps_task_id,
        "imageCount": 1,
    }
    assert save_event["run"]["facets"]["externalQuery"]["externalQueryId"] == mps_task_id
    assert all(prompt not in json.dumps(event) for event in events)


def test_the_listeners_default_forked_child_emits_the_saved_image(
    scheduled_dag, mps_conn, forked_lineage_events, tmp_path, monkeypatch
):
    # By default the listener builds the event in a forked child, and kills it after 10 s: there an
    # XCom read hangs, so a transfer reading its own return value lost its COMPLETE event.
    image_base = tmp_path / "images"
    run, created = run_scheduled_example(scheduled_dag, mps_conn, image_base, monkeypatch)

    [save_event] = completes(forked_lineage_events(), "save_images")

    assert [output_fields(output) for output in save_event["outputs"]] == [
        saved_image_output(run, image_base, created["TaskId"])
    ]
    assert save_event["run"]["facets"]["externalQuery"]["externalQueryId"] == created["TaskId"]
