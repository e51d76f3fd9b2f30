"""MpsAigcImageBatchTrigger (one trigger for a batch of MPS tasks) and its event check."""

from __future__ import annotations

import time

import pytest

from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.triggers.mps import MpsAigcImageBatchTrigger, validate_batch_trigger_event
from tests.triggers._build import polling_trigger

CONN_ID = "tencentcloud_mps_default"


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


def _trigger(task_ids: list[str], **kwargs):
    return polling_trigger(MpsAigcImageBatchTrigger, mps_task_ids=task_ids, **kwargs)


async def _events(trigger: MpsAigcImageBatchTrigger) -> list[dict]:
    try:
        return [event.payload async for event in trigger.run()]
    finally:
        await trigger.cleanup()


def _create(*prompts: str) -> list[str]:
    from airflow_provider_mps.hooks.mps import MpsHook

    hook = MpsHook()
    return [hook.create_aigc_image_task(prompt=prompt) for prompt in prompts]


def _describes(emulator) -> list[dict]:
    return [r for r in emulator.requests() if r["Action"] == "DescribeAigcImageTask"]


@pytest.mark.asyncio
async def test_one_event_reports_every_task_in_order_once_all_are_final(mps_conn):
    task_ids = _create("a red fox", "a fox [emulator:fail]", "a blue whale")
    unknown = "1-AigcImage-unknown"

    events = await _events(_trigger([*task_ids, unknown]))

    tasks = {task["TaskId"]: task for task in mps_conn.tasks()}
    assert len(events) == 1
    event = events[0]
    results = event["results"]
    assert event == {
        "status": "success",
        "mps_task_ids": [*task_ids, unknown],
        "results": [
            {
                "TaskId": task_ids[0],
                "Status": "DONE",
                "ImageUrls": [f"{mps_conn.endpoint}/images/{task_ids[0]}/0.png"],
                "Message": results[0]["Message"],
                "RequestId": results[0]["RequestId"],
            },
            {
                "TaskId": task_ids[1],
                "Status": "FAIL",
                "ImageUrls": [],
                "Message": tasks[task_ids[1]]["Message"],
                "RequestId": results[1]["RequestId"],
            },
            {
                "TaskId": task_ids[2],
                "Status": "DONE",
                "ImageUrls": [f"{mps_conn.endpoint}/images/{task_ids[2]}/0.png"],
                "Message": results[2]["Message"],
                "RequestId": results[2]["RequestId"],
            },
            {
                "TaskId": unknown,
                "Status": "NOT_FOUND",
                "ImageUrls": [],
                "Message": f"The task `{unknown}` does not exist.",
                "RequestId": results[3]["RequestId"],
                "Code": "ResourceNotFound.TaskNotFound",
            },
        ],
        "message": "All 4 MPS tasks finished.",
    }
    describe_ids = {call["RequestId"] for call in _describes(mps_conn)}
    assert {result["RequestId"] for result in results} <= describe_ids
    # A task is no longer described once it is final: the unknown one exactly once.
    errors = [call["ErrorCode"] for call in _describes(mps_conn) if call["ErrorCode"]]
    assert errors == ["ResourceNotFound.TaskNotFound"]


@pytest.mark.asyncio
async def test_tasks_still_running_at_the_deadline_fire_a_timeout_event_with_their_last_status(mps_conn):
    (done,) = _create("quick")
    mps_conn.configure(wait_seconds=60)
    (slow,) = _create("slow")
    trigger = _trigger([done, slow], poll_interval=0.1, within=0.6)

    events = await _events(trigger)

    from datetime import datetime, timezone

    deadline = datetime.fromtimestamp(trigger.end_time, tz=timezone.utc).isoformat()
    assert [(e["status"], e["message"]) for e in events] == [
        ("timeout", f"1 of 2 MPS tasks did not finish before {deadline}.")
    ]
    assert [(r["TaskId"], r["Status"]) for r in events[0]["results"]] == [(done, "DONE"), (slow, "WAIT")]


@pytest.mark.asyncio
async def test_transient_errors_leave_tasks_for_the_next_round(mps_conn):
    task_ids = _create("one", "two")
    mps_conn.configure(error_code="InternalError", error_burst={"DescribeAigcImageTask": 3})

    events = await _events(_trigger(task_ids))

    codes = [call["ErrorCode"] for call in _describes(mps_conn)]
    assert codes[:3] == ["InternalError"] * 3
    assert set(codes[3:]) == {None}
    assert [e["status"] for e in events] == ["success"]
    assert [r["Status"] for r in events[0]["results"]] == ["DONE", "DONE"]


@pytest.mark.asyncio
async def test_a_hard_error_ends_the_trigger_with_an_error_event(mps_conn):
    task_ids = _create("one")
    mps_conn.configure(error_code="AuthFailure.SecretIdNotFound", error_burst={"DescribeAigcImageTask": 1})

    events = await _events(_trigger(task_ids))

    request_id = _describes(mps_conn)[0]["RequestId"]
    assert events == [
        {
            "status": "error",
            "mps_task_ids": task_ids,
            "results": [None],
            "message": f"Polling MPS task {task_ids[0]} failed: DescribeAigcImageTask failed with "
            "AuthFailure.SecretIdNotFound: Injected by the emulator: AuthFailure.SecretIdNotFound. "
            f"(RequestId: {request_id})",
        }
    ]


@pytest.mark.asyncio
async def test_one_trigger_for_many_tasks_never_exceeds_the_describe_quota(mps_conn):
    rate = 10
    mps_conn.configure(wait_seconds=1.5)
    task_ids = _create(*(f"lighthouse {n}" for n in range(12)))

    start = time.time()
    events = await _events(_trigger(task_ids, poll_interval=0.01, rate_limit=rate))

    assert [e["status"] for e in events] == ["success"]
    describes = _describes(mps_conn)
    assert [call["ErrorCode"] for call in describes] == [None] * len(describes)
    assert len(describes) > len(task_ids)
    offsets = [t - start for t in sorted(call["Time"] for call in describes)]
    assert [k for k, offset in enumerate(offsets) if offset < k / rate - 0.002] == []


@pytest.mark.asyncio
async def test_missing_connection_fires_an_error_event_without_calling_the_service(mps_emulator):
    trigger = MpsAigcImageBatchTrigger(
        mps_task_ids=["task-1"],
        mps_conn_id="no_such_connection",
        poll_interval=0.05,
        end_time=time.time() + 5,
    )

    events = await _events(trigger)

    assert events == [
        {
            "status": "error",
            "mps_task_ids": ["task-1"],
            "results": [None],
            "message": "Cannot poll MPS tasks with 'no_such_connection': "
            "The conn_id `no_such_connection` isn't defined",
        }
    ]
    assert mps_emulator.requests() == []


# -- validate_batch_trigger_event -------------------------------------------------------------

DONE = {"TaskId": "t1", "Status": "DONE", "ImageUrls": ["https://x/0.png"], "Message": "", "RequestId": "r1"}
FAIL = {"TaskId": "t2", "Status": "FAIL", "ImageUrls": [], "Message": "boom", "RequestId": "r2"}


def test_a_success_event_gives_the_result_of_every_task():
    event = {
        "status": "success",
        "mps_task_ids": ["t1", "t2"],
        "results": [DONE, FAIL],
        "message": "All done.",
    }

    assert validate_batch_trigger_event(event, mps_task_ids=["t1", "t2"]) == {
        "status": "success",
        "results": {"t1": DONE, "t2": FAIL},
        "message": "All done.",
    }


def test_a_timeout_event_gives_the_last_status_of_every_task():
    running = {**DONE, "Status": "RUN", "ImageUrls": []}
    event = {
        "status": "timeout",
        "mps_task_ids": ["t1", "t2"],
        "results": [running, None],
        "message": "Late.",
    }

    assert validate_batch_trigger_event(event) == {
        "status": "timeout",
        "results": {"t1": running, "t2": None},
        "message": "Late.",
    }


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "The trigger event must be a dict from MpsAigcImageBatchTrigger, got None."),
        (
            {"status": "error", "mps_task_ids": ["t1"], "results": [None], "message": "Polling failed: X."},
            "Polling failed: X.",
        ),
        (
            {"status": "failed", "mps_task_ids": ["t1"], "results": [None], "message": ""},
            "The batch trigger event status 'failed' is not one of error, success, timeout; event: "
            "{'status': 'failed', 'mps_task_ids': ['t1'], 'results': [None], 'message': ''}.",
        ),
        (
            {"status": "success", "mps_task_ids": ["t1"], "results": [], "message": ""},
            "The batch trigger event must carry mps_task_ids and one result per task; event: "
            "{'status': 'success', 'mps_task_ids': ['t1'], 'results': [], 'message': ''}.",
        ),
        (
            {"status": "success", "mps_task_ids": ["t9"], "results": [DONE], "message": ""},
            "The batch trigger event is for 1 MPS task(s) that are not the 1 task(s) waited for.",
        ),
        (
            {
                "status": "success",
                "mps_task_ids": ["t1"],
                "results": [{**DONE, "Status": "RUN"}],
                "message": "",
            },
            "The success event reports MPS task t1 as {'TaskId': 't1', 'Status': 'RUN', 'ImageUrls': "
            "['https://x/0.png'], 'Message': '', 'RequestId': 'r1'}, not DONE, FAIL or NOT_FOUND.",
        ),
    ],
)
def test_validation_never_assumes_success(event, message):
    with pytest.raises(MpsError) as raised:
        validate_batch_trigger_event(event, mps_task_ids=["t1"])

    assert str(raised.value) == message
