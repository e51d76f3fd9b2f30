"""
MpsCreateAigcImageTasksOperator in a real DAG run (``dag.test()``) against the emulator.

One DAG exercises the behaviours that need Airflow itself: requests from an upstream ``XComArg``,
a deferral to the batch trigger and back, XComs read downstream, and a retried try re-attaching
through the real ``task_state_store`` instead of creating the batch again.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageTasksOperator
from tests.conftest import run_dag
from tests.operators._airflow_records import task_states, xcoms
from tests.operators.test_mps_dag_runs import stored_task_state

START = pendulum.datetime(2025, 1, 1, tz="UTC")


class DiesAfterSubmittingOnFirstTry(MpsCreateAigcImageTasksOperator):
    """Loses its worker right after every item was created and recorded, on the first try only."""

    def _submit(self, *args: Any, **kwargs: Any) -> str | None:
        stopped = super()._submit(*args, **kwargs)
        if self._current_try == 1:
            raise RuntimeError("Simulated worker loss after the batch was created.")
        return stopped

    def execute(self, context: Any) -> Any:
        self._current_try = context["ti"].try_number
        return super().execute(context)


def test_a_batch_from_upstream_rows_defers_and_a_retry_reattaches_through_the_task_state_store(
    airflow_home, mps_conn
):
    with DAG("mps_batch_operator", schedule=None, start_date=START) as dag:

        @task
        def rows() -> list[dict[str, Any]]:
            return [
                {"prompt": "a stoneware mug"},
                {"prompt": "a brass lamp", "extra_parameters": {"AspectRatio": "16:9"}},
                {"prompt": "a canvas tote [emulator:fail]"},
            ]

        deferred = MpsCreateAigcImageTasksOperator(
            task_id="deferred",
            requests=rows(),
            shared_fields={"model_name": "GEM"},
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            max_failed_items=1,
        )
        DiesAfterSubmittingOnFirstTry(
            task_id="retried",
            requests=["a desk lamp", "a lounge chair"],
            wait_for_completion=True,
            poll_interval=0.2,
            retries=1,
            retry_delay=datetime.timedelta(seconds=0),
        )

        @task
        def usable(mps_task_ids: list[str | None]) -> list[str]:
            return [task_id for task_id in mps_task_ids if task_id]

        usable(deferred.output)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {
        ("rows", -1): ("success", 1),
        ("deferred", -1): ("success", 1),
        ("retried", -1): ("success", 2),
        ("usable", -1): ("success", 1),
    }
    records = xcoms(run.run_id, dag.dag_id)
    by_prompt = {created["Request"]["Prompt"]: created for created in mps_conn.tasks()}
    # Two tries of "retried", yet one task per item: the second try re-attached.
    assert sorted(by_prompt) == [
        "a brass lamp",
        "a canvas tote [emulator:fail]",
        "a desk lamp",
        "a lounge chair",
        "a stoneware mug",
    ]
    assert by_prompt["a brass lamp"]["Request"] == {
        "Prompt": "a brass lamp",
        "ModelName": "GEM",
        "ExtraParameters": {"AspectRatio": "16:9"},
    }
    mug, lamp, tote = (
        by_prompt[p]["TaskId"] for p in ("a stoneware mug", "a brass lamp", "a canvas tote [emulator:fail]")
    )
    assert records[("deferred", -1, "return_value")] == [mug, lamp, None]
    assert records[("deferred", -1, "image_urls")] == [
        [f"{mps_conn.endpoint}/images/{mug}/0.png"],
        [f"{mps_conn.endpoint}/images/{lamp}/0.png"],
        [],
    ]
    [failure] = records[("deferred", -1, "failures")]
    assert (failure["index"], failure["stage"], failure["code"], failure["mps_task_id"]) == (
        2,
        "wait",
        "FAIL",
        tote,
    )
    assert records[("usable", -1, "return_value")] == [mug, lamp]
    desk, chair = by_prompt["a desk lamp"]["TaskId"], by_prompt["a lounge chair"]["TaskId"]
    assert records[("retried", -1, "return_value")] == [desk, chair]
    assert records[("retried", -1, "image_urls")] == [
        [f"{mps_conn.endpoint}/images/{desk}/0.png"],
        [f"{mps_conn.endpoint}/images/{chair}/0.png"],
    ]
    # The request ids survive the retry through the task state store.
    create_ids = {
        call["RequestId"] for call in mps_conn.requests() if call["Action"] == "CreateAigcImageTask"
    }
    assert (
        set(records[("retried", -1, "request_ids")]) | set(records[("deferred", -1, "request_ids")])
        == create_ids
    )
    # Both batches succeeded, so neither keeps a record: clearing them would generate new images.
    assert stored_task_state(run.run_id, dag.dag_id) == {}
    assert run.state == "success"
