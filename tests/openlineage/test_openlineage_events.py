"""
The scheduled example emits OpenLineage events naming the saved image and the MPS task.

Runs with ``apache-airflow-providers-openlineage`` installed (the main ``.venv``): the events go to a
file transport and are read back.
"""

from __future__ import annotations

import json
from typing import Any

import pendulum
import pytest

from airflow_provider_mps.transfers.mps_to_object_storage import safe_path_segment
from tests.conftest import EXAMPLE_DAGS, run_dag

pytest.importorskip("airflow.providers.openlineage")

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


def test_scheduled_example_emits_the_mps_task_and_the_saved_image_without_the_prompt(
    scheduled_dag, mps_conn, lineage_events, tmp_path, monkeypatch
):
    mps_conn.configure(wait_seconds=0, run_seconds=0)
    image_base = tmp_path / "images"
    monkeypatch.setenv("AIRFLOW_VAR_MPS_IMAGE_BASE", f"file://{image_base}")

    run = run_dag(scheduled_dag, logical_date=pendulum.datetime(2025, 3, 1, tz="UTC"))

    assert run.state == "success"
    [created] = mps_conn.tasks()
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

    [output] = save_event["outputs"]
    image = f"{DAG_ID}/{safe_path_segment(run.run_id)}/{mps_task_id}/0.png"
    statistics = output["outputFacets"]["outputStatistics"]
    assert (output["namespace"], output["name"], statistics["size"], statistics["fileCount"]) == (
        f"file://{worker_hostname(run, 'save_images')}",
        f"{image_base}/{image}",
        (image_base / image).stat().st_size,
        1,
    )
    save_facet = save_event["run"]["facets"]["tencentcloudMps_aigcImage"]
    assert {key: value for key, value in save_facet.items() if not key.startswith("_")} == {
        "taskId": mps_task_id,
        "imageCount": 1,
    }
    assert save_event["run"]["facets"]["externalQuery"]["externalQueryId"] == mps_task_id
    assert all(prompt not in json.dumps(event) for event in events)
