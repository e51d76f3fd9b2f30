"""
The review example on a real Airflow 3.1, answered through Airflow's REST API.

``make test-matrix`` runs this on 3.1.8 only (``REVIEW_E2E_LINE`` in ``tests/matrix/run.py``): the
oldest line with human-in-the-loop operators, where the review waits in the standard provider's
``HITLTrigger``.  ``airflow dags test`` cannot run that trigger on 3.1.8: its in-process supervisor
answers the trigger's ``GetHITLDetailResponse`` with "Unhandled request", and the task fails.  So
this test starts a scheduler, a triggerer, a DAG processor and an API server
(``tests/integration/airflow_cluster``) with ``example_mps_human_review`` alone in the DAGs folder.
It triggers the example with its form's values, reads the review as the UI does, checks that every
image it shows can be loaded, and answers with the same ``PATCH`` the UI sends.

On 3.3 the review waits in the ``awaiting_input`` state instead, and ``make test-browser`` answers it
from the UI on 3.3.2 (``tests/browser/test_human_review.py``); before 3.1 the review cannot run.
"""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from packaging.version import Version

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from tests.integration.airflow_cluster import EXAMPLE_DAGS, MPS_CONNECTION_ENV, AirflowCluster

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

#: The installed Airflow's (major, minor).
AIRFLOW_LINE = Version(version("apache-airflow")).release[:2]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(AIRFLOW_LINE < (3, 1), reason="the review step needs Airflow 3.1+"),
    pytest.mark.skipif(
        AIRFLOW_LINE >= (3, 3),
        reason="on 3.3 the review waits in awaiting_input; tests/browser/test_human_review.py answers it",
    ),
]

DAG_ID = "example_mps_human_review"
FORM = {"prompt": "A ceramic teapot on slate, top light", "model_name": "GEM", "candidates": 3}
KEPT = ["Candidate 1", "Candidate 3"]


@pytest.fixture(scope="module")
def airflow(
    tmp_path_factory: pytest.TempPathFactory, mps_emulator_server: ThreadedEmulatorServer
) -> Iterator[AirflowCluster]:
    """A real Airflow with the review example only, its MPS connection on the session's emulator."""
    images = tmp_path_factory.mktemp("mps-images")
    cluster = AirflowCluster(
        tmp_path_factory.mktemp("airflow"),
        dag_sources=[EXAMPLE_DAGS / f"{DAG_ID}.py"],
        extra_env={
            MPS_CONNECTION_ENV: EmulatorHandle.from_server(mps_emulator_server).airflow_connection(),
            "AIRFLOW_VAR_MPS_IMAGE_BASE": images.as_uri(),
        },
    )
    with cluster:
        yield cluster


def test_the_review_waits_in_the_triggerer_and_a_rest_api_answer_saves_exactly_the_kept_candidates(
    airflow: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    airflow.wait_for_dags([DAG_ID])
    airflow.unpause(DAG_ID)
    run_id = airflow.trigger(DAG_ID, FORM)
    review = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/review/-1/hitlDetails"
    airflow.wait_for(
        lambda: airflow.task_instances(DAG_ID, run_id).get("review", {}).get("state") == "deferred",
        timeout=180,
        what=lambda: f"the review to wait in the triggerer: {airflow.explain(DAG_ID, run_id)}",
    )
    task_ids = airflow.xcom(DAG_ID, run_id, "create_candidates")
    detail = airflow.api("GET", review)
    shown = re.findall(r"!\[([^\]]*)\]\(<([^>]+)>\)", detail["body"])
    loaded = [httpx.get(url, timeout=10) for _alt, url in shown]

    assert (detail["subject"], detail["options"], detail["multiple"], detail["response_received"]) == (
        "Keep which of 3 generated images?",
        ["Candidate 1", "Candidate 2", "Candidate 3", "Reject all"],
        True,
        False,
    )
    assert shown == [
        (f"Candidate {n}, image 1", f"{mps_emulator.endpoint}/images/{task_id}/0.png")
        for n, task_id in enumerate(task_ids, start=1)
    ]
    assert [(r.status_code, r.headers["content-type"]) for r in loaded] == [(200, "image/png")] * 3

    answer = airflow.api("PATCH", review, json={"chosen_options": KEPT, "params_input": {}})
    watch = airflow.wait_for_run(DAG_ID, run_id, timeout=180)

    assert (watch.state, answer["chosen_options"]) == ("success", KEPT), airflow.explain(DAG_ID, run_id)
    assert "deferred" in watch.ti_states["review"], watch.ti_states
    assert {task: states[-1] for task, states in watch.ti_states.items()} == {
        "candidate_requests": "success",
        "create_candidates": "success",
        "review": "success",
        "save_chosen": "success",
        "revised_request": "skipped",
        "regenerate": "skipped",
    }
    assert airflow.xcom(DAG_ID, run_id, "review") == [task_ids[0], task_ids[2]]
    run_folder = Path(urlsplit(airflow.env["AIRFLOW_VAR_MPS_IMAGE_BASE"]).path) / DAG_ID
    saved = sorted(f"{path.parent.name}/{path.name}" for path in run_folder.rglob("*") if path.is_file())
    assert saved == sorted([f"{task_ids[0]}/0.png", f"{task_ids[2]}/0.png"])
    events = airflow.api("GET", "/assets/events", params={"source_dag_id": DAG_ID, "source_run_id": run_id})
    assert sorted((event["uri"], event["extra"]["mps_task_id"]) for event in events["asset_events"]) == [
        (f"mps://{DAG_ID}/approved", task_id) for task_id in sorted([task_ids[0], task_ids[2]])
    ]
    assert [task["Request"] for task in mps_emulator.tasks()] == [
        {"Prompt": FORM["prompt"], "ModelName": "GEM", "OutputImageCount": 1}
    ] * 3
