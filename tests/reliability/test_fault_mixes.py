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
    # The first create meets an HTML 502 (its try fails; the retry callback ends the 502s), the next
    # two creates are refused for quota (retried by the hook), the first three describes fail with
    # InternalError, and every describe is slowed down (within request_timeout).
    mps_conn.configure(
        html_5xx_rate={CREATE: 1.0},
        error_code={CREATE: "RequestLimitExceeded", DESCRIBE: "InternalError"},
        error_burst={CREATE: 2, DESCRIBE: 3},
        latency_seconds={DESCRIBE: 0.2},
    )
    recorder = FailureRecorder(on_retry=clear_knobs_on_retry(mps_conn, html_5xx_rate=0))

    run = run_fault_case(
        "mix: 502 + quota + InternalError + slow",
        fault_dag("reliability_scripted_mix", recorder, retries=1, model_name="GEM"),
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
        (None, None),
    ]
    assert run.faulted_calls(DESCRIBE) == [("InternalError", "error")] * 3
    # Exactly one creator lost its first try (to the 502); the others and the sensor succeeded at once.
    assert sorted(tries for (task_id, _), (_, tries) in run.states.items() if task_id in CREATORS) == [
        1,
        1,
        2,
    ]
    assert {state for state, _ in run.states.values()} == {"success"}
    assert run.states[("sensor", -1)] == ("success", 1)
    [failure] = run.failures
    assert (failure.try_number, failure.error_type) == (1, "MpsNetworkError")
    assert failure.message.startswith(f"{CREATE} failed with ServerNetworkError: ")
    assert len(run.orphan_warnings) == 1
    assert (len(run.tasks), run.duplicates, run.lost) == (3, 0, 0)
    assert {run.xcoms[(creator, -1, "return_value")] for creator in CREATORS} == set(run.task_ids)


def test_seeded_random_soak_loses_nothing_and_warns_for_every_possible_orphan(airflow_home, mps_conn):
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
    # Quota refusals are retried by the hook; every other failed create fails its try with a WARNING.
    may_have_reached = [fault for fault in create_faults if fault != "error"]
    accepted_then_lost = [
        fault for fault in create_faults if fault in ("drop_after_create", "malformed_body")
    ]
    assert len(run.orphan_warnings) == len(may_have_reached)
    assert run.duplicates == len(accepted_then_lost)
    assert run.lost == 0
    # Each of those failed its try; the other failed tries ran out of describe retries.
    failed_creates = [f for f in run.failures if f.message.startswith(f"{CREATE} failed")]
    assert len(failed_creates) == len(may_have_reached)
    assert {state for state, _ in run.states.values()} == {"success"}, run.failures
    creators = {CREATOR[actor] for actor in actors} | {"mapped_sync", "mapped_deferred"}
    kept = {
        value
        for (task_id, _, key), value in run.xcoms.items()
        if key == "return_value" and task_id in creators
    }
    assert kept <= set(run.task_ids)
    assert len(kept) == len(actors) + 12
