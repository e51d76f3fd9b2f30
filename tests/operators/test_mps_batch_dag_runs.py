"""
MpsCreateAigcImageBatchOperator in real DAG runs (``dag.test()``) against the emulator.

The behaviours that need Airflow itself: requests from an upstream ``XComArg``, a deferral to the
batch trigger and back, XComs read downstream, and a retried try, which re-attaches through the
real ``task_state_store`` on Airflow 3.3+ and fails instead of creating the batch again before.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from tests.operators._airflow_records import task_states, xcoms
from tests.operators._dag_runs import run_dag
from tests.operators.conftest import before_task_state_store, needs_task_state_store
from tests.operators.test_mps_dag_runs import stored_task_state, try_record_variables

START = pendulum.datetime(2025, 1, 1, tz="UTC")


class DiesAfterFinishingOnFirstTry(MpsCreateAigcImageBatchOperator):
    """Loses its worker after the operator's work is done but before the task instance succeeded."""

    def execute(self, context: Any) -> list[str | None]:
        mps_task_ids = super().execute(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("Simulated worker loss between the operator's return and the task's success.")
        return mps_task_ids


class DiesAfterSubmittingOnFirstTry(MpsCreateAigcImageBatchOperator):
    """Loses its worker right after every item was created and recorded, on the first try only."""

    def submit_job(self, context: Any) -> Any:
        submitted = super().submit_job(context)
        if context["ti"].try_number == 1:
            raise RuntimeError("Simulated worker loss after the batch was created.")
        return submitted


def test_a_batch_from_upstream_rows_defers_and_its_xcoms_feed_a_downstream_task(airflow_home, mps_conn):
    with DAG("mps_batch_operator", schedule=None, start_date=START) as dag:

        @task
        def rows() -> list[dict[str, Any]]:
            return [
                {"prompt": "a stoneware mug"},
                {"prompt": "a brass lamp", "extra_parameters": {"AspectRatio": "16:9"}},
                {"prompt": "a canvas tote [emulator:fail]"},
            ]

        deferred = MpsCreateAigcImageBatchOperator(
            task_id="deferred",
            requests=rows(),
            shared_fields={"model_name": "GEM"},
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            max_failed_items=1,
        )

        @task
        def usable(mps_task_ids: list[str | None]) -> list[str]:
            return [task_id for task_id in mps_task_ids if task_id]

        usable(deferred.output)
        MpsCreateAigcImageBatchOperator(
            task_id="no_xcom_push",
            requests=["a glass vase"],
            wait_for_completion=True,
            deferrable=True,
            poll_interval=0.2,
            do_xcom_push=False,
        )

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {
        ("rows", -1): ("success", 1),
        ("deferred", -1): ("success", 1),
        ("usable", -1): ("success", 1),
        ("no_xcom_push", -1): ("success", 1),
    }
    records = xcoms(run.run_id, dag.dag_id)
    # do_xcom_push=False: no return_value, across the deferral too.
    assert ("no_xcom_push", -1, "return_value") not in records
    vase = [
        created["TaskId"] for created in mps_conn.tasks() if created["Request"]["Prompt"] == "a glass vase"
    ]
    assert records[("no_xcom_push", -1, "image_urls")] == [[f"{mps_conn.endpoint}/images/{vase[0]}/0.png"]]
    by_prompt = {
        created["Request"]["Prompt"]: created for created in mps_conn.tasks() if created["TaskId"] not in vase
    }
    assert sorted(by_prompt) == ["a brass lamp", "a canvas tote [emulator:fail]", "a stoneware mug"]
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
    create_ids = {
        call["RequestId"] for call in mps_conn.requests() if call["Action"] == "CreateAigcImageTask"
    }
    assert set(records[("deferred", -1, "request_ids")]) | set(
        records[("no_xcom_push", -1, "request_ids")]
    ) == (create_ids)
    assert run.state == "success"


RETRY = {
    "wait_for_completion": True,
    "poll_interval": 0.2,
    "retries": 1,
    "retry_delay": datetime.timedelta(0),
}


@needs_task_state_store
def test_a_retry_reattaches_to_the_batch_through_the_task_state_store(airflow_home, mps_conn):
    with DAG("mps_batch_operator_reattach", schedule=None, start_date=START) as dag:
        DiesAfterSubmittingOnFirstTry(task_id="retried", requests=["a desk lamp", "a lounge chair"], **RETRY)
        DiesAfterFinishingOnFirstTry(task_id="finished", requests=["a side table"], **RETRY)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {
        ("retried", -1): ("success", 2),
        ("finished", -1): ("success", 2),
    }
    records = xcoms(run.run_id, dag.dag_id)
    # Two tries, yet one task per item: the second try re-attached, even after a first try whose
    # operator had finished (the record is kept until the task instance succeeded, and after).
    by_prompt = {created["Request"]["Prompt"]: created["TaskId"] for created in mps_conn.tasks()}
    assert sorted(by_prompt) == ["a desk lamp", "a lounge chair", "a side table"]
    assert records[("finished", -1, "return_value")] == [by_prompt["a side table"]]
    desk, chair = by_prompt["a desk lamp"], by_prompt["a lounge chair"]
    assert records[("retried", -1, "return_value")] == [desk, chair]
    assert records[("retried", -1, "image_urls")] == [
        [f"{mps_conn.endpoint}/images/{desk}/0.png"],
        [f"{mps_conn.endpoint}/images/{chair}/0.png"],
    ]
    # The request ids survive the retry through the task state store.
    create_ids = {
        call["RequestId"] for call in mps_conn.requests() if call["Action"] == "CreateAigcImageTask"
    }
    assert set(records[("retried", -1, "request_ids")]) | set(records[("finished", -1, "request_ids")]) == (
        create_ids
    )
    # [state_store] clear_on_success is False by default: the ledger stays, so a clear re-attaches.
    stored = stored_task_state(run.run_id, dag.dag_id)
    assert stored[("retried", -1, "mps_aigc_image_batch.0")]["1"]["TaskId"] == chair
    assert stored[("finished", -1, "mps_aigc_image_batch.0")]["0"]["TaskId"] == by_prompt["a side table"]
    assert run.state == "success"


@before_task_state_store
def test_before_airflow_3_3_a_retried_batch_reattaches_through_airflow_variables_which_go_on_success(
    airflow_home, mps_conn
):
    with DAG("mps_batch_operator_variables", schedule=None, start_date=START) as dag:
        DiesAfterSubmittingOnFirstTry(task_id="lamps", requests=["a desk lamp", "a lounge chair"], **RETRY)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("lamps", -1): ("success", 2)}
    # The retry read the ledger its first try kept in Variables: every item was paid for once.
    by_prompt = {created["Request"]["Prompt"]: created["TaskId"] for created in mps_conn.tasks()}
    assert len(mps_conn.tasks()) == 2
    records = xcoms(run.run_id, dag.dag_id)
    assert records[("lamps", -1, "return_value")] == [by_prompt["a desk lamp"], by_prompt["a lounge chair"]]
    assert try_record_variables(dag.dag_id, run.run_id) == []
