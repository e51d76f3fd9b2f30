"""
Several faults at once: a scripted mix with an exact outcome, and a seeded random soak.

The soak's request sequence depends on timing, so it asserts the invariants that must hold
whatever the draws: no TaskId lost; exactly one orphan WARNING per create that failed after it
may have reached the service; a second task only when the service had accepted the first
request; every Airflow task succeeds within its retries.
"""

from __future__ import annotations

import pytest

from tests.reliability._dags import CREATOR, fault_dag
from tests.reliability._harness import CREATE, DESCRIBE, FailureRecorder, clear_knobs_on_retry, run_fault_case

pytestmark = pytest.mark.reliability

CREATORS = ("sync", "deferred", "create_for_sensor")


def test_scripted_mix_of_quota_error_page_and_service_error_bursts(airflow_home, mps_conn):
    # The first create meets an HTML 502: it may have created a task, so its Airflow task fails at
    # once, without retries (its failure callback ends the 502s).  The next two creates are refused
    # for quota (retried by the hook), the first three describes fail with InternalError, and every
    # describe is slowed down (within request_timeout).
    mps_conn.configure(
        html_5xx_rate={CREATE: 1.0},
        error_code={CREATE: "RequestLimitExceeded", DESCRIBE: "InternalError"},
        error_burst={CREATE: 2, DESCRIBE: 3},
        latency_seconds={DESCRIBE: 0.2},
    )
    recorder = FailureRecorder(on_failure=clear_knobs_on_retry(mps_conn, html_5xx_rate=0))

    run = run_fault_case(
        "mix: 502 + quota + InternalError + slow",
        fault_dag("reliability_scripted_mix", recorder, retries=2, model_name="GEM"),
        mps_conn,
        recorder=recorder,
        creating_tasks=3,
    )

    assert run.calls(CREATE) == [
        (None, "html_5xx"),
        ("RequestLimitExceeded", "error"),
        ("RequestLimitExceeded", "error"),
        (None, None),
        (None, None),
    ]
    assert run.faulted_calls(DESCRIBE) == [("InternalError", "error")] * 3
    # Exactly one creator failed, on its first try, despite its retries; the others succeeded at once.
    creators = {task_id: state for (task_id, _), state in run.states.items() if task_id in CREATORS}
    assert sorted(creators.values()) == [("failed", 1), ("success", 1), ("success", 1)]
    [failure] = run.failures
    assert (failure.try_number, failure.error_type) == (1, "AirflowFailException")
    assert failure.message.startswith(f"{CREATE} failed with ServerNetworkError: ")
    assert failure.message.endswith("set resubmit_on_retry=True on the operator.")
    assert len(run.orphan_warnings) == 1
    # The 502 created nothing: two tasks, one per successful creator, nothing paid twice or lost.
    assert (len(run.tasks), run.paid, run.duplicates, run.lost) == (2, 1, 0, 0)
    kept = {
        run.xcoms[(creator, -1, "return_value")]
        for creator, state in creators.items()
        if state[0] == "success"
    }
    assert kept == set(run.task_ids)


def test_seeded_random_soak_never_pays_twice_loses_nothing_and_warns_for_every_possible_orphan(
    airflow_home, mps_conn
):
    mps_conn.configure(
        seed=20250601,
        drop_before_read_rate=0.05,
        html_5xx_rate=0.05,
        drop_after_create_rate=0.05,
        malformed_body_rate=0.05,
        error_rate=0.05,
        error_code={CREATE: "RequestLimitExceeded", DESCRIBE: "InternalError"},
    )
    recorder = FailureRecorder()
    actors = ["sync", "deferred", "sensor", "deferred_sensor", "create_only"]

    run = run_fault_case(
        "soak: 5 faults at 5% each (seeded)",
        fault_dag("reliability_soak", recorder, actors, retries=6, mapped=6, model_name="GEM"),
        mps_conn,
        recorder=recorder,
        creating_tasks=len(actors) + 12,
    )

    create_faults = [fault for _, fault in run.faulted_calls(CREATE)]
    # Quota refusals are retried by the hook; every other failed create fails its task at once, with a
    # WARNING, and is never sent again: no prompt is paid for twice.
    may_have_reached = [fault for fault in create_faults if fault != "error"]
    assert len(run.orphan_warnings) == len(may_have_reached)
    assert (run.paid, run.duplicates, run.lost) == (1, 0, 0)
    failed_creates = [f for f in run.failures if f.message.startswith(f"{CREATE} failed")]
    assert len(failed_creates) == len(may_have_reached)
    assert {(f.try_number, f.error_type) for f in failed_creates} <= {(1, "AirflowFailException")}
    # Each such creator failed (its sensor did not run); every other task succeeded within its retries.
    failed = {task for task, (state, _) in run.states.items() if state == "failed"}
    assert len(failed) == len(may_have_reached)
    assert {state for state, _ in run.states.values()} <= {"success", "failed", "upstream_failed"}
    creators = {CREATOR[actor] for actor in actors} | {"mapped_sync", "mapped_deferred"}
    kept = {
        value
        for (task_id, _, key), value in run.xcoms.items()
        if key == "return_value" and task_id in creators
    }
    assert kept <= set(run.task_ids)
    assert len(kept) == len(actors) + 12 - len(may_have_reached)
