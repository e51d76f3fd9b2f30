"""
A create whose answer never arrives intact: never retried blindly, reported, re-created by Airflow.

A create is not idempotent on the service.  When a create fails after the request may have
reached the service, the hook does not retry it: it logs a WARNING naming the possibly orphaned
request and fails the try.  Airflow's retry then creates again.  Only when the service had in fact
accepted the first request (its answer was dropped, garbled or too slow) are two tasks created;
that window cannot be closed from the client, and the WARNING is what reports it.

Each fault lasts for the first try only: the task's retry callback turns it off.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.reliability._dags import CREATOR, fault_dag
from tests.reliability._harness import (
    CREATE,
    FailureRecorder,
    clear_knobs_on_retry,
    run_fault_case,
)

pytestmark = pytest.mark.reliability

NETWORK_ERROR = "MpsNetworkError"
ORPHAN_WARNING = re.compile(
    rf"warning: {CREATE} for model GEM may have created a task whose TaskId is lost: the request may "
    rf"have reached the service before it failed \({CREATE} failed with (?P<code>[\w.]+): .+\)\. It is "
    r"not retried, to avoid a duplicate task; check the MPS console for an orphaned AIGC image task "
    r"created around \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC with the prompt (?P<prompt>'[^']*') before "
    r"running again\."
)


@dataclass(frozen=True)
class CreateFault:
    case: str
    knobs: dict[str, Any]
    cleared: dict[str, Any]
    actor: str
    first_create: tuple[str | None, str | None]
    error_type: str
    error: str
    service_created_first: bool
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    CreateFault(
        case="dropped before read (create)",
        knobs={"drop_before_read_rate": {CREATE: 1.0}},
        cleared={"drop_before_read_rate": 0},
        actor="sync",
        first_create=(None, "drop_before_read"),
        error_type=NETWORK_ERROR,
        error=rf"{CREATE} failed with ClientNetworkError\.ConnectionLost: The connection was lost after the "
        r"request was sent: .+ \(RequestId: none\)",
        service_created_first=False,
    ),
    CreateFault(
        case="HTTP 502 HTML page (create)",
        knobs={"html_5xx_rate": {CREATE: 1.0}},
        cleared={"html_5xx_rate": 0},
        actor="sensor",
        first_create=(None, "html_5xx"),
        error_type=NETWORK_ERROR,
        error=rf"{CREATE} failed with ServerNetworkError: The service answered with an HTTP error status "
        r"instead of an API response: <html> <head><title>502 Bad Gateway</title>.+ \(RequestId: none\)",
        service_created_first=False,
    ),
    CreateFault(
        case="InternalError x1 (create)",
        knobs={"error_code": "InternalError", "error_burst": {CREATE: 1}},
        cleared={},
        actor="deferred",
        first_create=("InternalError", "error"),
        error_type="MpsTransientError",
        error=rf"{CREATE} failed with InternalError: .+ \(RequestId: [0-9a-f-]{{36}}\)",
        service_created_first=False,
    ),
    CreateFault(
        case="response lost after create",
        knobs={"drop_after_create_rate": {CREATE: 1.0}},
        cleared={"drop_after_create_rate": 0},
        actor="deferred",
        first_create=(None, "drop_after_create"),
        error_type=NETWORK_ERROR,
        error=rf"{CREATE} failed with ClientNetworkError\.ConnectionLost: The connection was lost after the "
        r"request was sent: .+ \(RequestId: none\)",
        service_created_first=True,
    ),
    CreateFault(
        case="non-JSON body after create",
        knobs={"malformed_body_rate": {CREATE: 1.0}},
        cleared={"malformed_body_rate": 0},
        actor="sync",
        first_create=(None, "malformed_body"),
        error_type=NETWORK_ERROR,
        error=rf"{CREATE} failed with ClientNetworkError\.MalformedResponse: The service's answer could not "
        r"be read as an API response: .+ \(RequestId: none\)",
        service_created_first=True,
    ),
    CreateFault(
        case="create slower than request_timeout",
        knobs={"latency_seconds": {CREATE: 1.5}},
        cleared={"latency_seconds": 0},
        actor="create_only",
        first_create=(None, "client_disconnected"),
        error_type=NETWORK_ERROR,
        error=rf"{CREATE} failed with ClientNetworkError\.Timeout: The request timed out after it was sent: "
        r".+ \(RequestId: none\)",
        service_created_first=True,
        extra={"request_timeout": 1},
    ),
]


@pytest.mark.parametrize("fault", CASES, ids=[fault.case for fault in CASES])
def test_failed_create_is_reported_never_retried_blindly_and_recreated_by_the_next_try(
    airflow_home, mps_emulator, point_connection_at, fault
):
    point_connection_at(mps_emulator, **fault.extra)
    mps_emulator.configure(**fault.knobs)
    recorder = FailureRecorder(on_retry=clear_knobs_on_retry(mps_emulator, **fault.cleared))
    dag_id = "reliability_create_" + re.sub(r"\W+", "_", fault.case).strip("_")

    run = run_fault_case(
        fault.case,
        fault_dag(dag_id, recorder, [fault.actor], retries=1, model_name="GEM"),
        mps_emulator,
        recorder=recorder,
        creating_tasks=1,
        settled=lambda requests: sum(r["Action"] == CREATE for r in requests) == 2,
    )

    creator = CREATOR[fault.actor]
    expected_states = {(creator, -1): ("success", 2)}
    if fault.actor == "sensor":
        expected_states[("sensor", -1)] = ("success", 1)
    assert run.states == expected_states
    # One create per try: the hook never repeated the create that may have reached the service.
    assert sorted(run.calls(CREATE), key=str) == sorted([fault.first_create, (None, None)], key=str)
    [(try_number, error_type, message)] = run.failure_messages(creator)
    assert (try_number, error_type) == (1, fault.error_type)
    assert re.fullmatch(fault.error, message), message
    [warning] = run.orphan_warnings
    orphan = ORPHAN_WARNING.fullmatch(warning)
    assert orphan, warning
    # The prompt's start, quoted, so the orphan can be found in the console.
    quoted = ast.literal_eval(orphan["prompt"])
    prompt = f"{dag_id}: {fault.actor}"
    assert quoted == prompt or (quoted.endswith("...") and prompt.startswith(quoted[:-3])), warning

    # The service made a second task only when it had accepted the first request.
    requests = [task["Request"] for task in run.tasks]
    expected_request = {"Prompt": f"{dag_id}: {fault.actor}", "ModelName": "GEM"}
    assert requests == [expected_request] * (2 if fault.service_created_first else 1)
    assert run.duplicates == (1 if fault.service_created_first else 0)
    # Airflow kept the task of the successful try; only the orphan (reported by the WARNING) is unknown.
    kept = run.xcoms[(creator, -1, "return_value")]
    assert kept in run.task_ids
    assert run.reported_task_ids == {kept}
    assert run.lost == 0
