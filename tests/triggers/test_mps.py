from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_mps.triggers.mps import MpsAigcImageBatchTrigger, MpsAigcImageTaskTrigger
from tests.triggers._build import polling_trigger

CONN_ID = "tencentcloud_mps_default"


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


def _trigger(mps_task_id: str, **kwargs):
    return polling_trigger(MpsAigcImageTaskTrigger, mps_task_id=mps_task_id, **kwargs)


async def _events(trigger: MpsAigcImageTaskTrigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def _create(prompt: str = "A lighthouse at dawn") -> str:
    from airflow_provider_mps.hooks.mps import MpsHook

    return MpsHook().create_aigc_image_task(prompt=prompt, model_name="GEM")


def _describes(emulator) -> list[dict]:
    return [r for r in emulator.requests() if r["Action"] == "DescribeAigcImageTask"]


@pytest.mark.parametrize(
    ("cls", "given", "serialized"),
    [
        (MpsAigcImageTaskTrigger, {"mps_task_id": "task-1"}, {"mps_task_id": "task-1"}),
        (
            MpsAigcImageBatchTrigger,
            {"mps_task_ids": ("task-1", "task-2")},
            {"mps_task_ids": ["task-1", "task-2"]},
        ),
    ],
    ids=["single", "batch"],
)
def test_serialize_returns_the_class_path_and_every_constructor_argument(cls, given, serialized):
    arguments = {"mps_conn_id": "mps_prod", "poll_interval": 15, "end_time": 1_900_000_000.5}
    trigger = cls(**given, **arguments, region="ap-singapore", rate_limit=8)

    assert trigger.serialize() == (
        f"airflow_provider_mps.triggers.mps.{cls.__name__}",
        {**serialized, **arguments, "poll_interval": 15.0, "region": "ap-singapore", "rate_limit": 8.0},
    )
    classpath, kwargs = trigger.serialize()
    assert cls(**json.loads(json.dumps(kwargs))).serialize() == (classpath, kwargs)


def test_serialized_trigger_round_trips_through_json():
    original = MpsAigcImageTaskTrigger(
        mps_task_id="task-1", mps_conn_id="mps_prod", poll_interval=10, end_time=1_900_000_000.0
    )
    classpath, kwargs = original.serialize()

    rebuilt = MpsAigcImageTaskTrigger(**json.loads(json.dumps(kwargs)))

    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["region"] is None
    assert kwargs["rate_limit"] == 20.0


@pytest.mark.asyncio
async def test_done_task_fires_one_success_event_with_the_describe_result(mps_conn):
    mps_task_id = _create()

    events = await _events(_trigger(mps_task_id))

    task = mps_conn.tasks()[0]
    assert task["Status"] == "DONE"
    assert events == [
        {
            "status": "success",
            "mps_task_id": mps_task_id,
            "result": {
                "TaskId": mps_task_id,
                "Status": "DONE",
                "ImageUrls": task["ImageUrls"],
                "Message": events[0]["result"]["Message"],
                "RequestId": _describes(mps_conn)[-1]["RequestId"],
            },
            "message": f"MPS task {mps_task_id} is DONE.",
        }
    ]
    assert events[0]["result"]["Message"] in (None, "")
    assert task["ImageUrls"] == [f"{mps_conn.endpoint}/images/{mps_task_id}/0.png"]


@pytest.mark.asyncio
async def test_failed_task_fires_a_failed_event_with_the_service_message(mps_conn):
    mps_task_id = _create("A lighthouse [emulator:fail]")

    events = await _events(_trigger(mps_task_id))

    task = mps_conn.tasks()[0]
    assert task["Status"] == "FAIL"
    assert events == [
        {
            "status": "failed",
            "mps_task_id": mps_task_id,
            "result": {
                "TaskId": mps_task_id,
                "Status": "FAIL",
                "ImageUrls": [],
                "Message": task["Message"],
                "RequestId": _describes(mps_conn)[-1]["RequestId"],
            },
            "message": task["Message"],
        }
    ]
    assert task["Message"] == "Image generation failed: the prompt asked the emulator to fail this task."


@pytest.mark.asyncio
async def test_task_still_running_at_the_deadline_fires_a_timeout_event(mps_conn):
    mps_conn.configure(wait_seconds=60)
    mps_task_id = _create()
    trigger = _trigger(mps_task_id, poll_interval=0.1, within=0.5)

    events = await _events(trigger)

    from datetime import datetime, timezone

    deadline = datetime.fromtimestamp(trigger.end_time, tz=timezone.utc).isoformat()
    assert events == [
        {
            "status": "timeout",
            "mps_task_id": mps_task_id,
            "result": {
                "TaskId": mps_task_id,
                "Status": "WAIT",
                "ImageUrls": [],
                "Message": events[0]["result"]["Message"],
                "RequestId": _describes(mps_conn)[-1]["RequestId"],
            },
            "message": f"MPS task {mps_task_id} did not finish before {deadline}; its last status was WAIT.",
        }
    ]
    # The trigger polled right up to the deadline, the last poll after end_time - poll_interval.
    assert _describes(mps_conn)[-1]["Time"] >= trigger.end_time - 0.1


@pytest.mark.parametrize("error_code", ["InternalError", "RequestLimitExceeded"])
@pytest.mark.asyncio
async def test_transient_errors_are_retried_until_the_task_is_done(mps_conn, error_code):
    mps_task_id = _create()
    mps_conn.configure(error_code=error_code, error_burst={"DescribeAigcImageTask": 4})

    events = await _events(_trigger(mps_task_id))

    codes = [r["ErrorCode"] for r in _describes(mps_conn)]
    assert codes[:4] == [error_code] * 4
    assert set(codes[4:]) == {None}
    assert [e["status"] for e in events] == ["success"]
    assert events[0]["result"]["ImageUrls"] == mps_conn.tasks()[0]["ImageUrls"]


@pytest.mark.asyncio
async def test_unknown_task_fires_an_error_event_naming_the_code_and_request_id(mps_conn):
    events = await _events(_trigger("no-such-task"))

    request_id = _describes(mps_conn)[-1]["RequestId"]
    assert [r["ErrorCode"] for r in _describes(mps_conn)] == ["ResourceNotFound.TaskNotFound"]
    assert events == [
        {
            "status": "error",
            "mps_task_id": "no-such-task",
            "result": None,
            "message": "Polling MPS task no-such-task failed: DescribeAigcImageTask failed with "
            "ResourceNotFound.TaskNotFound: The task `no-such-task` does not exist. "
            f"(RequestId: {request_id})",
        }
    ]


@pytest.mark.asyncio
async def test_missing_connection_fires_an_error_event_without_calling_the_service(mps_emulator):
    trigger = MpsAigcImageTaskTrigger(
        mps_task_id="task-1", mps_conn_id="no_such_connection", poll_interval=0.05, end_time=time.time() + 5
    )

    events = await _events(trigger)

    assert events == [
        {
            "status": "error",
            "mps_task_id": "task-1",
            "result": None,
            "message": "Cannot poll MPS task task-1 with 'no_such_connection': "
            "The conn_id `no_such_connection` isn't defined",
        }
    ]
    assert mps_emulator.requests() == []


@pytest.mark.asyncio
async def test_triggers_sharing_credentials_never_exceed_the_processs_quota_share(mps_conn, monkeypatch):
    rate = 10
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", str(rate))
    # Tasks that wait for three seconds keep all ten triggers polling for longer than two seconds,
    # so even a busy machine sends more than two calls per trigger through the limiter.
    mps_conn.configure(rate_limit=rate, wait_seconds=3.0)
    task_ids = [_create(f"A lighthouse number {n}") for n in range(rate)]

    # Polling every 20 ms, ten triggers would send 500 calls/s without the shared limiter.
    start = time.time()
    events = await asyncio.gather(*(_events(_trigger(t, poll_interval=0.02)) for t in task_ids))

    assert [[e["status"] for e in per_trigger] for per_trigger in events] == [["success"]] * rate
    describes = _describes(mps_conn)
    assert [r["ErrorCode"] for r in describes] == [None] * len(describes)
    assert len(describes) > 2 * rate
    # The k-th call reached the service no earlier than k / rate seconds after the start: a busy
    # machine can only delay a call past its slot, never bring it forward.
    offsets = [t - start for t in sorted(r["Time"] for r in describes)]
    assert [k for k, offset in enumerate(offsets) if offset < k / rate - 0.002] == []


@pytest.mark.asyncio
async def test_a_triggers_rate_limit_never_slows_the_other_triggers_of_the_account(mps_conn, monkeypatch):
    # Finding 6 of issue 11: a task's rate_limit lowered the limiter every trigger of the account
    # shares in the process, until the process restarted.
    from airflow_provider_mps.hooks import _mps_requests
    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.utils.rate_limit import RateLimiter, process_rate_limiter

    own_grants: list[float] = []

    class OwnLimiter(RateLimiter):  # the triggers' own limiters, counted
        async def aacquire(self) -> None:
            await super().aacquire()
            own_grants.append(self.rate)

    monkeypatch.setattr(_mps_requests, "RateLimiter", OwnLimiter)
    mps_conn.configure(wait_seconds=0, run_seconds=0)
    slow_task, *other_tasks = [_create(f"A lighthouse number {n}") for n in range(6)]
    [[slow]] = [await _events(_trigger(slow_task, rate_limit=0.5))]
    slow_describes = len(_describes(mps_conn))

    others = await asyncio.gather(*(_events(_trigger(task_id)) for task_id in other_tasks))

    assert [slow["status"]] + [event["status"] for [event] in others] == ["success"] * 6
    # Only the slow trigger's own describes waited at a 0.5/s limiter; the others' waited at their
    # own default of the whole quota, then at the process's, whose rate the slow one left alone.
    assert len(_describes(mps_conn)) == slow_describes + 5
    assert sorted(own_grants) == [0.5] * slow_describes + [20.0] * 5
    key = MpsHook(CONN_ID).rate_limit_key
    assert process_rate_limiter(key, "DescribeAigcImageTask").rate == 20


@pytest.mark.parametrize(
    ("poll_interval", "failures", "low", "high"),
    [
        (10, 1, 5, 10),
        (10, 2, 10, 20),
        (10, 4, 30, 60),
        (10, 9, 30, 60),
        (120, 3, 60, 120),
        (0, 1, 0.025, 0.05),
    ],
)
def test_backoff_doubles_from_the_poll_interval_with_jitter_up_to_a_cap(poll_interval, failures, low, high):
    trigger = _trigger("task-1", poll_interval=poll_interval)

    delays = [trigger._backoff(failures) for _ in range(50)]

    assert [d for d in delays if not low <= d <= high] == []
    assert len(set(delays)) > 1


def test_the_create_operators_rate_limit_reaches_its_trigger(mps_conn):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
    from tests.operators.conftest import make_context

    operator = MpsCreateAigcImageTaskOperator(
        task_id="create",
        prompt="a cat",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        rate_limit=5,  # the task's own spacing of its polls
    )

    with pytest.raises(TaskDeferred) as raised:
        operator.execute(make_context())

    [created] = mps_conn.tasks()
    _, kwargs = raised.value.trigger.serialize()
    assert (kwargs["mps_task_id"], kwargs["rate_limit"]) == (created["TaskId"], 5.0)
