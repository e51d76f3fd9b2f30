"""MpsCreateAigcImageTaskOperator waiting for its task: polling, deferring, ``execute_complete``."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mps.emulator.models import FAIL_MARKER, FAIL_MARKER_MESSAGE
from airflow_provider_mps.exceptions import MpsError, MpsTaskFailedError, MpsTaskTimeoutError
from tests.operators.conftest import (
    STATE_KEY,
    DictTaskStateStore,
    kept_for_a_retry,
    make_context,
    make_operator,
    stored_job,
)

# -- waiting ---------------------------------------------------------------------------------


def test_wait_for_completion_pushes_the_image_urls_and_returns_the_task_id(mps_conn):
    context = make_context()

    task_id = make_operator(prompt="a cat", wait_for_completion=True).execute(context)

    [created] = mps_conn.tasks()
    assert created["Status"] == "DONE"
    assert task_id == created["TaskId"]
    assert context["ti"].xcoms == {
        "request_id": mps_conn.requests()[0]["RequestId"],
        "image_urls": [f"{mps_conn.endpoint}/images/{task_id}/0.png"],
    }
    # Kept after success: Airflow's [state_store] clear_on_success decides when it goes.
    assert context["task_state_store"].values == kept_for_a_retry(
        {STATE_KEY: stored_job({"TaskId": task_id, "RequestId": mps_conn.requests()[0]["RequestId"]})}
    )


def test_wait_for_completion_fails_with_the_service_message_task_id_and_request_id(mps_conn):
    context = make_context()

    with pytest.raises(MpsTaskFailedError) as raised:
        make_operator(prompt=f"a cat {FAIL_MARKER}", wait_for_completion=True).execute(context)

    [created] = mps_conn.tasks()
    last_describe = mps_conn.requests()[-1]
    assert (last_describe["Action"], created["Status"]) == ("DescribeAigcImageTask", "FAIL")
    assert str(raised.value) == (
        f"MPS task {created['TaskId']} failed: {FAIL_MARKER_MESSAGE} "
        f"(RequestId: {last_describe['RequestId']})"
    )
    assert "image_urls" not in context["ti"].xcoms


def test_wait_for_completion_gives_up_after_the_timeout_and_keeps_the_task_for_the_retry(mps_conn):
    mps_conn.configure(run_seconds=60)
    context = make_context()

    with pytest.raises(MpsTaskTimeoutError, match="did not finish before .*; its last status was"):
        make_operator(prompt="a cat", wait_for_completion=True, timeout=0.3).execute(context)

    [created] = mps_conn.tasks()
    assert context["task_state_store"].values == kept_for_a_retry(
        {
            STATE_KEY: stored_job(
                {"TaskId": created["TaskId"], "RequestId": mps_conn.requests()[0]["RequestId"]}
            )
        }
    )


def test_deferrable_operator_creates_then_defers_to_the_trigger(mps_conn):
    context = make_context()
    operator = make_operator(
        prompt="a cat",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        timeout=600,
        region="ap-beijing",
    )
    before = time.time()

    with pytest.raises(TaskDeferred) as raised:
        operator.execute(context)

    after = time.time()
    [created] = mps_conn.tasks()
    deferred = raised.value
    classpath, kwargs = deferred.trigger.serialize()
    end_time = kwargs.pop("end_time")
    assert (classpath, kwargs) == (
        "airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger",
        {
            "mps_task_id": created["TaskId"],
            "mps_conn_id": "tencentcloud_mps_default",
            "poll_interval": 2.0,
            "region": "ap-beijing",
            "rate_limit": 20.0,
        },
    )
    assert before + 600 <= end_time <= after + 600
    assert (deferred.method_name, deferred.kwargs) == ("execute_complete", {"mps_task_id": created["TaskId"]})
    # Airflow's own deferral deadline backs up the trigger's: the timeout plus a minute.
    assert deferred.timeout == datetime.timedelta(seconds=660)
    assert context["task_state_store"].values == kept_for_a_retry(
        {
            STATE_KEY: stored_job(
                {"TaskId": created["TaskId"], "RequestId": mps_conn.requests()[0]["RequestId"]}
            )
        }
    )


def test_deferrable_operator_without_wait_for_completion_does_not_defer(mps_conn):
    task_id = make_operator(prompt="a cat", deferrable=True).execute(make_context())

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]


def success_event(task_id: str, image_urls: list[str]) -> dict[str, Any]:
    result = {"TaskId": task_id, "Status": "DONE", "ImageUrls": image_urls, "Message": "", "RequestId": "r-1"}
    return {
        "status": "success",
        "mps_task_id": task_id,
        "result": result,
        "message": f"MPS task {task_id} is DONE.",
    }


def test_execute_complete_pushes_the_image_urls_and_returns_the_task_id():
    store = DictTaskStateStore({STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})
    context = make_context(store)
    operator = make_operator(prompt="a cat", wait_for_completion=True, deferrable=True)

    task_id = operator.execute_complete(context, success_event("t-1", ["https://x/0.png"]), mps_task_id="t-1")

    assert (task_id, context["ti"].xcoms) == ("t-1", {"image_urls": ["https://x/0.png"]})
    # Success leaves the stored TaskId to Airflow ([state_store] clear_on_success).
    assert store.values == {STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}}


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        pytest.param(
            {
                "status": "failed",
                "mps_task_id": "t-1",
                "result": {"RequestId": "r-9"},
                "message": "NSFW prompt.",
            },
            MpsTaskFailedError,
            "MPS task t-1 failed: NSFW prompt. (RequestId: r-9)",
            id="failed",
        ),
        pytest.param(
            {"status": "timeout", "mps_task_id": "t-1", "result": None, "message": "Too slow."},
            MpsTaskTimeoutError,
            "Too slow.",
            id="timeout",
        ),
        pytest.param(
            {"status": "error", "mps_task_id": "t-1", "result": None, "message": "AuthFailure."},
            MpsError,
            "AuthFailure.",
            id="error",
        ),
        pytest.param(
            success_event("t-2", ["https://x/0.png"]),
            MpsError,
            "The trigger event is for MPS task 't-2', but the task waited for 't-1'.",
            id="another-task",
        ),
        pytest.param(
            None,
            MpsError,
            "The trigger event must be a dict from MpsAigcImageTaskTrigger, got None.",
            id="none",
        ),
    ],
)
def test_execute_complete_never_assumes_success(event, error, message):
    store = DictTaskStateStore({STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})
    context = make_context(store)

    with pytest.raises(error) as raised:
        make_operator(prompt="a cat", wait_for_completion=True, deferrable=True).execute_complete(
            context, event, mps_task_id="t-1"
        )

    assert str(raised.value) == message
    assert (context["ti"].xcoms, store.values) == ({}, {STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})
