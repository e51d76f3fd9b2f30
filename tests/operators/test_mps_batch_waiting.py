"""MpsCreateAigcImageBatchOperator waiting for its batch: polling, deferring, ``execute_complete``."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mps.emulator.models import FAIL_MARKER_MESSAGE
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS
from tests.operators._batch import (
    CREATE,
    BatchTaskInstance,
    created_by_prompt,
    creates,
    make_context,
    make_operator,
)
from tests.operators._task_logs import request_ids_from_logs
from tests.operators.conftest import DictTaskStateStore, kept_for_a_retry

pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


# -- waiting ---------------------------------------------------------------------------------


def test_wait_for_completion_pushes_image_urls_per_item_and_records_failed_tasks(mps_conn):
    context = make_context()
    operator = make_operator(
        requests=["a cat", "a dog [emulator:fail]", {"prompt": "a bird", "output_image_count": 2}],
        wait_for_completion=True,
        max_failed_items=1,
    )

    task_ids = operator.execute(context)

    by_prompt = created_by_prompt(mps_conn)
    cat, dog, bird = by_prompt["a cat"], by_prompt["a dog [emulator:fail]"], by_prompt["a bird"]
    assert task_ids == [cat, None, bird]
    xcoms = context["ti"].xcoms
    assert xcoms["image_urls"] == [
        [f"{mps_conn.endpoint}/images/{cat}/0.png"],
        [],
        [f"{mps_conn.endpoint}/images/{bird}/0.png", f"{mps_conn.endpoint}/images/{bird}/1.png"],
    ]
    [failure] = xcoms["failures"]
    assert failure == {
        "index": 1,
        "stage": "wait",
        "code": "FAIL",
        "message": FAIL_MARKER_MESSAGE,
        "request_id": failure["request_id"],
        "mps_task_id": dog,
        "possibly_created": False,
    }
    describe_ids = {call["RequestId"] for call in mps_conn.requests() if call["Action"] != CREATE}
    assert failure["request_id"] in describe_ids


def test_a_failed_wait_keeps_done_items_for_the_retry_and_creates_failed_ones_anew(mps_conn):
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog [emulator:fail]"]
    first_context = make_context(store)

    with pytest.raises(MpsError) as raised:
        make_operator(requests=prompts, wait_for_completion=True).execute(first_context)

    first_try = created_by_prompt(mps_conn)
    [failure] = first_context["ti"].xcoms["failures"]
    assert str(raised.value) == (
        "1 of 2 items failed, more than max_failed_items=0; the first, requests[1], failed with FAIL: "
        f"{FAIL_MARKER_MESSAGE} (RequestId: {failure['request_id']}). "
        "Every failure is in the 'failures' XCom."
    )
    context = make_context(store, try_number=2)

    with pytest.raises(MpsError):
        make_operator(requests=prompts, wait_for_completion=True).execute(context)

    # The batch sends concurrently, so the service's order of the first try's two tasks varies.
    tasks = mps_conn.tasks()
    assert sorted(task["Request"]["Prompt"] for task in tasks) == [
        "a cat",
        "a dog [emulator:fail]",
        "a dog [emulator:fail]",
    ]
    [dog_again] = [task["TaskId"] for task in tasks if task["TaskId"] not in first_try.values()]
    assert context["ti"].xcoms["return_value"] == [first_try["a cat"], None]
    assert context["ti"].xcoms["failures"][0]["mps_task_id"] == dog_again


def test_waiting_times_out_into_timeout_failures(mps_conn):
    mps_conn.configure(wait_seconds=60)
    context = make_context()

    with pytest.raises(MpsError) as raised:
        make_operator(requests=["a cat"], wait_for_completion=True, timeout=0.3).execute(context)

    [failure] = context["ti"].xcoms["failures"]
    assert (failure["stage"], failure["code"], failure["mps_task_id"]) == (
        "wait",
        "Timeout",
        mps_conn.tasks()[0]["TaskId"],
    )
    assert failure["message"].startswith(
        "Still WAIT when waiting ended: 1 of 1 MPS tasks did not finish before "
    )
    assert context["ti"].xcoms["image_urls"] == [[]]
    # An unfinished task stays in the ledger, not marked failed: the retry re-attaches to it (3.3+).
    ledger = context["task_state_store"].values.get("mps_aigc_image_batch.0", {})
    assert {index: (entry["TaskId"], "Status" in entry) for index, entry in ledger.items()} == (
        kept_for_a_retry({"0": (failure["mps_task_id"], False)})
    )
    assert str(raised.value).startswith("1 of 1 items failed")


def test_deferrable_operator_creates_then_defers_one_trigger_for_the_batch(mps_conn, task_logs):
    context = make_context()
    operator = make_operator(
        requests=["a cat", {"prompt": "a dog", "model_name": "Seedream"}, "a bird"],
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        timeout=600,
        max_failed_items=1,
        region="ap-guangzhou",
    )
    before = time.time()

    with pytest.raises(TaskDeferred) as raised:
        operator.execute(context)

    after = time.time()
    by_prompt = created_by_prompt(mps_conn)
    deferred = raised.value
    classpath, kwargs = deferred.trigger.serialize()
    end_time = kwargs.pop("end_time")
    assert (classpath, kwargs) == (
        "airflow_provider_mps.triggers.mps.MpsAigcImageBatchTrigger",
        {
            "mps_task_ids": [by_prompt["a cat"], by_prompt["a bird"]],
            "mps_conn_id": "tencentcloud_mps_default",
            "poll_interval": 2.0,
            "region": "ap-guangzhou",
            "rate_limit": 20.0,
        },
    )
    assert before + 600 <= end_time <= after + 600
    request_ids = request_ids_from_logs(task_logs())
    [refused] = [call for call in creates(mps_conn) if call["ErrorCode"]]
    assert (deferred.method_name, deferred.kwargs) == ("execute_complete", None)
    assert deferred.timeout == datetime.timedelta(seconds=660)
    # What execute_complete needs is pushed before deferring (Airflow keeps a try's XComs across it).
    pushed = context["ti"].xcoms
    assert pushed["return_value"] == [by_prompt["a cat"], None, by_prompt["a bird"]]
    assert pushed["request_ids"] == [
        request_ids[by_prompt["a cat"]],
        refused["RequestId"],
        request_ids[by_prompt["a bird"]],
    ]
    assert [failure["index"] for failure in pushed["failures"]] == [1]
    failures = list(pushed["failures"])

    # Resume as Airflow does: run the trigger, hand its event to execute_complete.
    import asyncio

    async def first_event() -> dict[str, Any]:
        try:
            async for event in deferred.trigger.run():
                return event.payload
        finally:
            await deferred.trigger.cleanup()
        raise AssertionError("no event")

    deferred.trigger.poll_interval = 0.05
    event = asyncio.run(first_event())
    resumed = make_context(context["task_state_store"], ti=context["ti"])

    task_ids = operator.execute_complete(resumed, event)

    assert task_ids == [by_prompt["a cat"], None, by_prompt["a bird"]]
    assert resumed["ti"].xcoms["image_urls"] == [
        [f"{mps_conn.endpoint}/images/{by_prompt['a cat']}/0.png"],
        [],
        [f"{mps_conn.endpoint}/images/{by_prompt['a bird']}/0.png"],
    ]
    assert resumed["ti"].xcoms["failures"] == failures


def test_execute_complete_never_assumes_success():
    context = make_context()
    context["ti"].xcoms.update({"return_value": ["t-1"], "failures": [], "request_ids": ["r-1"]})
    operator = make_operator(requests=["a cat"], wait_for_completion=True, deferrable=True)
    event = {"status": "error", "mps_task_ids": ["t-1"], "results": [None], "message": "Polling failed: X."}

    with pytest.raises(MpsError) as raised:
        operator.execute_complete(context, event)

    assert str(raised.value) == "Polling failed: X."
    # The TaskIds are pushed before failing.
    assert context["ti"].xcoms == {"return_value": ["t-1"], "failures": [], "request_ids": ["r-1"]}


def test_execute_complete_without_the_pushed_batch_fails_with_a_clear_message():
    event = {"status": "success", "mps_task_ids": ["t-1"], "results": [None], "message": ""}

    with pytest.raises(MpsError) as raised:
        make_operator(requests=["a cat"], wait_for_completion=True).execute_complete(make_context(), event)

    assert str(raised.value) == (
        "The batch's TaskIds, RequestIds and failures pushed before deferring are missing from the XComs "
        "of this try; the deferral cannot be resumed."
    )


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="before 3.3 the record is Airflow Variables, not the context's"
)
def test_without_a_task_state_store_in_the_context_the_batch_still_runs(mps_conn):
    # Airflow 3.3 leaves the store out of the context of a task it cannot keep state for.
    context = {"ti": BatchTaskInstance()}

    task_ids = make_operator(requests=["a cat", "a dog"]).execute(context)

    assert task_ids == [created_by_prompt(mps_conn)[prompt] for prompt in ("a cat", "a dog")]
