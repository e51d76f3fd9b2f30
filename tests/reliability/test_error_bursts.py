"""
Quota and service-error bursts: absorbed within the retry budget, a clear failure beyond it.

Each case runs the operator (sync and deferred wait) and the sensor in one DAG while the
emulator answers the next N calls of an action with an error code (``error_burst``), then checks
both sides' records: what the service received and created, what Airflow recorded.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest

from tests.reliability._dags import ACTORS, fault_dag
from tests.reliability._harness import CREATE, DESCRIBE, FailureRecorder, run_fault_case

pytestmark = pytest.mark.reliability

ALL_SUCCEED_FIRST_TRY = {
    ("sync", -1): ("success", 1),
    ("deferred", -1): ("success", 1),
    ("create_for_sensor", -1): ("success", 1),
    ("sensor", -1): ("success", 1),
}


def assert_every_task_reached_airflow(run) -> None:
    """Every MPS task created is the TaskId XCom of exactly one Airflow task; its images are in XCom."""
    created = {task["Request"]["Prompt"].rsplit(": ", 1)[1]: task for task in run.tasks}
    assert sorted(created) == sorted(ACTORS)
    assert run.xcoms[("sync", -1, "return_value")] == created["sync"]["TaskId"]
    assert run.xcoms[("deferred", -1, "return_value")] == created["deferred"]["TaskId"]
    assert run.xcoms[("create_for_sensor", -1, "return_value")] == created["sensor"]["TaskId"]
    assert run.xcoms[("sync", -1, "image_urls")] == created["sync"]["ImageUrls"]
    assert run.xcoms[("deferred", -1, "image_urls")] == created["deferred"]["ImageUrls"]
    assert run.xcoms[("sensor", -1, "image_urls")] == created["sensor"]["ImageUrls"]
    assert (run.duplicates, run.lost, run.orphan_warnings) == (0, 0, [])


def test_request_limit_burst_on_create_is_retried_by_the_hook_without_a_duplicate(airflow_home, mps_conn):
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={CREATE: 2})
    recorder = FailureRecorder()

    run = run_fault_case(
        "RequestLimitExceeded x2 on create",
        fault_dag("reliability_rle_create", recorder, retries=2),
        mps_conn,
        recorder=recorder,
        creating_tasks=3,
    )

    assert run.states == ALL_SUCCEED_FIRST_TRY
    assert run.calls(CREATE) == [("RequestLimitExceeded", "error")] * 2 + [(None, None)] * 3
    assert_every_task_reached_airflow(run)
    retries = [line for line in run.logs if "retry" in line and CREATE in line]
    assert len(retries) == 2, run.logs
    for number, line in enumerate(retries, start=1):
        assert re.fullmatch(
            rf"warning: {CREATE} failed with RequestLimitExceeded: .+ \(RequestId [0-9a-f-]{{36}}\); "
            rf"retry {number} of 3 in \d+\.\d s\.",
            line,
        ), line


@pytest.mark.parametrize(
    ("code", "case"),
    [
        ("RequestLimitExceeded", "RequestLimitExceeded x3 on describe"),
        ("InternalError", "InternalError x3 on describe"),
    ],
)
def test_error_burst_on_describe_is_absorbed_by_whichever_waiter_meets_it(airflow_home, mps_conn, code, case):
    mps_conn.configure(error_code=code, error_burst={DESCRIBE: 3})
    recorder = FailureRecorder()

    run = run_fault_case(
        case,
        fault_dag(f"reliability_{code.lower()}_describe", recorder),
        mps_conn,
        recorder=recorder,
        creating_tasks=3,
    )

    assert run.states == ALL_SUCCEED_FIRST_TRY
    assert run.calls(CREATE) == [(None, None)] * 3
    assert run.faulted_calls(DESCRIBE) == [(code, "error")] * 3
    assert_every_task_reached_airflow(run)
    assert run.failures == []


def test_request_limit_beyond_the_hook_budget_fails_the_try_and_the_airflow_retry_creates_it_once(
    airflow_home, mps_conn
):
    # The hook tries a create 4 times (3 retries); every one is refused for quota, so nothing is
    # created and the failure stays retryable: Airflow's retry creates the task, once.
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={CREATE: 4})
    recorder = FailureRecorder()

    run = run_fault_case(
        "RequestLimitExceeded x4 on create (budget 3)",
        fault_dag("reliability_rle_beyond_budget", recorder, ["sync"], retries=2),
        mps_conn,
        recorder=recorder,
        creating_tasks=1,
    )

    assert run.states == {("sync", -1): ("success", 2)}
    assert run.calls(CREATE) == [("RequestLimitExceeded", "error")] * 4 + [(None, None)]
    assert (len(run.tasks), run.paid, run.duplicates, run.orphan_warnings, run.lost) == (1, 1, 0, [], 0)
    assert run.xcoms[("sync", -1, "return_value")] == run.task_ids[0]
    [(try_number, error_type, message)] = run.failure_messages("sync")
    assert (try_number, error_type) == (1, "MpsTransientError")
    assert re.fullmatch(
        rf"{CREATE} failed with RequestLimitExceeded: .+ \(RequestId: [0-9a-f-]{{36}}\)", message
    ), message


class FailFirstTask:
    """While the run lasts, pins the first MPS task the service creates to ``FAIL`` (MPS bills no FAIL)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.failed: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            tasks = self.emulator.tasks()
            if tasks:
                self.failed = tasks[0]["TaskId"]
                self.emulator.force_status(self.failed, "FAIL", "Simulated generation failure.")
                return

    def __enter__(self) -> FailFirstTask:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_task_that_ends_fail_once_is_created_anew_by_the_airflow_retry_paying_for_one(
    airflow_home, mps_conn
):
    # The first task runs for seconds, long enough for the watcher to pin it FAIL; the retry's does not.
    mps_conn.configure(wait_seconds=1.0)
    recorder = FailureRecorder()
    watcher = FailFirstTask(mps_conn)

    run = run_fault_case(
        "FAIL once, then DONE",
        fault_dag("reliability_fail_once", recorder, ["sync"], retries=2),
        mps_conn,
        recorder=recorder,
        creating_tasks=1,
        during=lambda: watcher,
    )

    assert run.states == {("sync", -1): ("success", 2)}
    assert [task["Status"] for task in run.tasks] == ["FAIL", "DONE"]
    # Two tasks, one of them FAILed and free: one paid image, which reached the XCom.
    assert (run.paid, run.duplicates, run.orphan_warnings, run.lost) == (1, 0, [], 0)
    assert run.xcoms[("sync", -1, "return_value")] == run.task_ids[1] != watcher.failed
    [(try_number, error_type, _message)] = run.failure_messages("sync")
    assert (try_number, error_type) == (1, "MpsTaskFailedError")
