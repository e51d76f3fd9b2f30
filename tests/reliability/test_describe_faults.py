"""
Polling through a broken connection: never a second create, a clear failure when the budget runs out.

A describe is read-only, so every transient failure is retried: by the hook (3 retries with
backoff) for a poking sensor, and by the one polling trigger (backoff until its deadline) for
every wait of an operator, run in-process for a sync wait and by the triggerer for a deferred one.
Each fault here lasts longer than that budget, so the first try fails with a message naming the
fault; for the operator the retry callback then ends the fault and the next try re-attaches to
the MPS task of the first (no second create).  A sensor's timeout is final,
as for every Airflow sensor.
"""

from __future__ import annotations

import re

import pytest

from tests.reliability._dags import fault_dag
from tests.reliability._harness import CREATE, DESCRIBE, FailureRecorder, clear_knobs_on_retry, run_fault_case

pytestmark = pytest.mark.reliability


def assert_reattached(run, task_id: str) -> None:
    """One MPS task, created by try 1, re-attached to by try 2 and returned by it with its images."""
    [task] = run.tasks
    assert run.calls(CREATE) == [(None, None)]
    assert run.states == {(task_id, -1): ("success", 2)}
    assert run.xcoms[(task_id, -1, "return_value")] == task["TaskId"]
    assert run.xcoms[(task_id, -1, "image_urls")] == task["ImageUrls"]
    assert f"info: MPS task {task['TaskId']} from an earlier try is DONE" in run.logs
    assert (run.duplicates, run.lost, run.orphan_warnings) == (0, 0, [])


def assert_timed_out_polling(run, task_id: str, failed_poll: str) -> None:
    """Every describe of try 1 failed with ``failed_poll``; the wait timed out naming that failure."""
    faulted = [fault for _, fault in run.faulted_calls(DESCRIBE)]
    assert len(faulted) >= 2, faulted
    [(try_number, error_type, message)] = run.failure_messages(task_id)
    assert (try_number, error_type) == (1, "MpsTaskTimeoutError")
    assert re.fullmatch(
        rf"MPS task {run.tasks[0]['TaskId']} did not finish before \S+; its last status was unknown\. "
        rf"The last poll failed: {failed_poll}",
        message,
    ), message


def run_reattaching_case(emulator, case: str, dag_id: str, task_id: str, timeout: float, **knob: float):
    """
    Run the one task ``task_id`` (retries=1) with the describe ``knob`` set for try 1 only.

    The retry callback sets the knob back to 0; the run must then show the task re-attached.
    """
    [(name, value)] = knob.items()
    emulator.configure(**{name: {DESCRIBE: value}})
    recorder = FailureRecorder(on_retry=clear_knobs_on_retry(emulator, **{name: 0}))
    dag = fault_dag(dag_id, recorder, [task_id], retries=1, timeout=timeout)

    run = run_fault_case(case, dag, emulator, recorder=recorder, creating_tasks=1)

    assert_reattached(run, task_id)
    return run


def test_describe_slower_than_request_timeout_times_the_sync_wait_out_and_the_retry_reattaches(
    airflow_home, mps_emulator, point_connection_at
):
    point_connection_at(mps_emulator, request_timeout=1)

    run = run_reattaching_case(
        mps_emulator,
        "describe slower than request_timeout",
        "reliability_slow_describe",
        "sync",
        timeout=4,
        latency_seconds=1.5,
    )

    # Try 1: every describe timed out on the client, and was retried until the wait's deadline.
    assert {fault for _, fault in run.faulted_calls(DESCRIBE)} == {"client_disconnected"}
    assert_timed_out_polling(
        run,
        "sync",
        # The SDK's request_timeout, or the wait's own deadline, whichever came first.
        rf"({DESCRIBE} failed with ClientNetworkError\.Timeout: The request timed out after it was sent"
        r"(: .+)? \(RequestId: none\)|DescribeAigcImageTask did not answer within the \d+\.\d s left\.)",
    )


def test_connection_dropped_before_the_describe_is_read_times_the_sync_wait_out_and_the_retry_reattaches(
    airflow_home, mps_conn
):
    run = run_reattaching_case(
        mps_conn,
        "describe dropped before read",
        "reliability_dropped_describe",
        "sync",
        timeout=3,
        drop_before_read_rate=1.0,
    )

    # Describes were dropped; one cut off by the wait's deadline shows as a client disconnect.
    faults = {fault for _, fault in run.faulted_calls(DESCRIBE)}
    assert "drop_before_read" in faults
    assert faults <= {"drop_before_read", "client_disconnected"}
    assert_timed_out_polling(
        run,
        "sync",
        rf"{DESCRIBE} failed with ClientNetworkError\.ConnectionLost: The connection was lost after the "
        r"request was sent(: .+|\.) \(RequestId: none\)",
    )


def test_non_json_describe_answers_time_the_deferred_wait_out_and_the_retry_reattaches(
    airflow_home, mps_conn
):
    run = run_reattaching_case(
        mps_conn,
        "non-JSON describe answers (deferred)",
        "reliability_malformed_describe",
        "deferred",
        timeout=3,
        malformed_body_rate=1.0,
    )

    # The trigger kept polling (with backoff) until the deadline; every answer was garbled.
    faulted = run.faulted_calls(DESCRIBE)
    assert faulted == [(None, "malformed_body")] * len(faulted)
    assert_timed_out_polling(
        run,
        "deferred",
        rf"{DESCRIBE} failed with ClientNetworkError\.MalformedResponse: The service's answer "
        r"could not be read as an API response: .+ \(RequestId: none\)",
    )


def test_html_error_pages_on_every_describe_time_both_sensor_modes_out_with_a_clear_message(
    airflow_home, mps_conn
):
    mps_conn.configure(html_5xx_rate={DESCRIBE: 1.0})
    recorder = FailureRecorder()

    run = run_fault_case(
        "HTTP 502 on every describe (sensors)",
        fault_dag("reliability_html_describe", recorder, ["sensor", "deferred_sensor"], sensor_timeout=3),
        mps_conn,
        recorder=recorder,
        creating_tasks=2,
    )

    assert run.states == {
        ("create_for_sensor", -1): ("success", 1),
        ("sensor", -1): ("failed", 1),
        ("create_for_deferred_sensor", -1): ("success", 1),
        ("deferred_sensor", -1): ("failed", 1),
    }
    assert run.calls(CREATE) == [(None, None)] * 2
    faulted = run.faulted_calls(DESCRIBE)
    assert faulted == [(None, "html_5xx")] * len(run.calls(DESCRIBE))
    assert (run.duplicates, run.lost, run.orphan_warnings) == (0, 0, [])
    # The TaskIds reached Airflow (the creators' XComs) even though the waits failed.
    assert {run.xcoms[("create_for_sensor", -1, "return_value")]} | {
        run.xcoms[("create_for_deferred_sensor", -1, "return_value")]
    } == set(run.task_ids)
    [(_, poke_type, poke_message)] = run.failure_messages("sensor")
    assert poke_type == "AirflowSensorTimeout"
    assert re.fullmatch(
        r"Sensor has timed out; run duration of \d+\.\d+ seconds exceeds the specified timeout of 3\.0\.",
        poke_message,
    ), poke_message
    poke_warnings = [line for line in run.logs if line.startswith("warning: Could not describe MPS task")]
    assert poke_warnings, run.logs
    assert all("ServerNetworkError" in line and "502 Bad Gateway" in line for line in poke_warnings)
    [(_, deferred_type, deferred_message)] = run.failure_messages("deferred_sensor")
    assert deferred_type == "AirflowSensorTimeout"
    sensed = run.xcoms[("create_for_deferred_sensor", -1, "return_value")]
    assert re.fullmatch(
        rf"MPS task {sensed} did not finish before \S+; its last status was unknown\. The last poll failed: "
        rf"{DESCRIBE} failed with ServerNetworkError: The service answered with an HTTP error status "
        r"instead of an API response: <html> .+ \(RequestId: none\)",
        deferred_message,
    ), deferred_message
