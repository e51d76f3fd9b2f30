"""
A create whose answer never arrives intact: never resent blindly, reported, paid for at most once.

A create is not idempotent on the service.  When a create fails after the request may have
reached the service, the hook does not retry it: it logs a WARNING naming the possibly orphaned
request.  By default the operator then fails the task *without Airflow retries* (every case runs
with ``retries=2``), naming the request and the opt-in, so the service holds at most the one task
the lost answer was about: ``paid`` is 1 where the service had accepted the request, 0 where it had
not.  With ``resubmit_on_retry=True`` the retry sends it again: two tasks exactly when the service
had accepted the first request, a cost the operator counts in its log ("Possible duplicate").

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
    rf"warning: Possible duplicate 1 of this request: a {CREATE} sent around \d{{4}}-\d\d-\d\d "
    r"\d\d:\d\d:\d\d UTC \(RequestId [\w-]+, prompt (?P<prompt>'[^']*')\) may have been paid for although "
    r"its TaskId never came back\."
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


RETRIES = 2


def run_create_fault(fault: CreateFault, emulator: Any, point_connection_at: Any, *, opt_in: bool) -> Any:
    point_connection_at(emulator, **fault.extra)
    emulator.configure(**fault.knobs)
    recorder = FailureRecorder(on_retry=clear_knobs_on_retry(emulator, **fault.cleared))
    dag_id = (
        "reliability_create_" + re.sub(r"\W+", "_", fault.case).strip("_") + ("_opt_in" if opt_in else "")
    )
    extra = {"resubmit_on_retry": True} if opt_in else {}
    creates = 2 if opt_in else 1
    return run_fault_case(
        fault.case + (" + resubmit_on_retry" if opt_in else ""),
        fault_dag(dag_id, recorder, [fault.actor], retries=RETRIES, model_name="GEM", **extra),
        emulator,
        recorder=recorder,
        creating_tasks=1,
        settled=lambda requests: sum(r["Action"] == CREATE for r in requests) == creates,
    ), dag_id


def check_orphan_warning(run: Any, dag_id: str, actor: str) -> None:
    [warning] = run.orphan_warnings
    orphan = ORPHAN_WARNING.fullmatch(warning)
    assert orphan, warning
    # The prompt's start, quoted, so the orphan can be found in the console.
    quoted = ast.literal_eval(orphan["prompt"])
    prompt = f"{dag_id}: {actor}"
    assert quoted == prompt or (quoted.endswith("...") and prompt.startswith(quoted[:-3])), warning
    # One WARNING for one event: the hook leaves judging the failure to the operator.
    assert [line for line in run.logs if "Possible duplicate" in line] == [warning]


@pytest.mark.parametrize("fault", CASES, ids=[fault.case for fault in CASES])
def test_by_default_a_create_that_may_have_created_a_task_fails_at_once_and_pays_at_most_once(
    airflow_home, mps_emulator, point_connection_at, fault
):
    run, dag_id = run_create_fault(fault, mps_emulator, point_connection_at, opt_in=False)

    creator = CREATOR[fault.actor]
    expected_states = {(creator, -1): ("failed", 1)}
    if fault.actor == "sensor":
        expected_states[("sensor", -1)] = ("upstream_failed", 0)
    assert run.states == expected_states
    # One create, never repeated: not by the hook, not by Airflow's retries.
    assert run.calls(CREATE) == [fault.first_create]
    [(try_number, error_type, message)] = run.failure_messages(creator)
    assert (try_number, error_type) == (1, "AirflowFailException")
    assert re.match(fault.error + " The CreateAigcImageTask sent around ", message), message
    assert message.endswith(
        "may have created an MPS AIGC image task whose TaskId is lost, so the task fails without Airflow "
        "retries: a retry would send it again and may pay twice. Look for that task in the MPS console "
        "before running again. To let retries send it again, accepting that each possibly created task is "
        "paid for (every possible duplicate is counted in the log), set resubmit_on_retry=True on the "
        "operator."
    ), message
    check_orphan_warning(run, dag_id, fault.actor)
    # Paid once where the service had accepted the request, never otherwise; no TaskId unaccounted for.
    expected_request = {"Prompt": f"{dag_id}: {fault.actor}", "ModelName": "GEM"}
    assert [task["Request"] for task in run.tasks] == [expected_request] * int(fault.service_created_first)
    assert (run.paid, run.duplicates, run.lost) == (int(fault.service_created_first), 0, 0)


@pytest.mark.parametrize("fault", CASES, ids=[fault.case for fault in CASES])
def test_with_resubmit_on_retry_the_retry_creates_again_and_the_log_counts_the_possible_duplicate(
    airflow_home, mps_emulator, point_connection_at, fault
):
    run, dag_id = run_create_fault(fault, mps_emulator, point_connection_at, opt_in=True)

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
    check_orphan_warning(run, dag_id, fault.actor)

    # The service made a second task only when it had accepted the first request: the opt-in's cost.
    requests = [task["Request"] for task in run.tasks]
    expected_request = {"Prompt": f"{dag_id}: {fault.actor}", "ModelName": "GEM"}
    assert requests == [expected_request] * (2 if fault.service_created_first else 1)
    assert (run.paid, run.duplicates) == ((2, 1) if fault.service_created_first else (1, 0))
    # Airflow kept the task of the successful try; only the orphan (reported by the WARNING) is unknown.
    kept = run.xcoms[(creator, -1, "return_value")]
    assert kept in run.task_ids
    assert run.reported_task_ids == {kept}
    assert run.lost == 0
