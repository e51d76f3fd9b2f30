"""
One retry policy on every Airflow line: a try that left nothing billable is retried and creates anew;
a try whose MPS task may still bill is retried and re-attaches (``task_state_store`` on 3.3, Airflow
Variables before).  Real DAG runs (``dag.test()``) against the emulator, whose log judges what was paid.

Each operator below changes the emulator's faults when its second try starts, standing in for a
quota window that moved on, a describe outage that ended, or a task that fails once.
"""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from tests.operators._airflow_records import task_states, xcoms
from tests.operators._dag_runs import run_dag
from tests.operators.test_mps_dag_runs import try_record_variables

START = pendulum.datetime(2025, 1, 1, tz="UTC")
CREATE = "CreateAigcImageTask"
DESCRIBE = "DescribeAigcImageTask"
#: The hook tries a create 1 + 3 times on a quota refusal before the try fails.
HOOK_ATTEMPTS = 4
RETRY = {"retries": 2, "retry_delay": datetime.timedelta(0), "poll_interval": 0.2}


class FaultsClearedOnRetry(MpsCreateAigcImageTaskOperator):
    """Sets the emulator's knobs ``first`` for try 1 and ``then`` from try 2 on, before its work."""

    emulator: Any = None
    first: dict[str, Any] = {}
    then: dict[str, Any] = {}

    def execute(self, context: Any) -> str:
        self.emulator.configure(**(self.first if context["ti"].try_number == 1 else self.then))
        return super().execute(context)


def faults(emulator: Any, first: dict[str, Any], then: dict[str, Any]) -> type[FaultsClearedOnRetry]:
    return type("Faulty", (FaultsClearedOnRetry,), {"emulator": emulator, "first": first, "then": then})


def paid(emulator: Any) -> list[dict[str, Any]]:
    """The tasks MPS bills for: every task that did not end FAIL."""
    return [task for task in emulator.tasks() if task.get("Status") != "FAIL"]


def test_a_quota_refusal_beyond_the_hooks_retries_is_retried_by_airflow_and_pays_once(airflow_home, mps_conn):
    operator = faults(
        mps_conn,
        first={"error_code": "RequestLimitExceeded", "error_burst": {CREATE: HOOK_ATTEMPTS}},
        then={"error_burst": {CREATE: 0}},
    )
    with DAG("mps_retry_quota", schedule=None, start_date=START) as dag:
        operator(task_id="make", prompt="a teapot", wait_for_completion=True, **RETRY)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("make", -1): ("success", 2)}
    assert len(mps_conn.tasks()) == 1
    assert xcoms(run.run_id, dag.dag_id)[("make", -1, "return_value")] == mps_conn.tasks()[0]["TaskId"]
    assert try_record_variables(dag.dag_id, run.run_id) == []


def test_a_describe_outage_longer_than_one_try_reattaches_and_pays_once(airflow_home, mps_conn):
    operator = faults(
        mps_conn,
        first={"error_code": "InternalError", "error_burst": {DESCRIBE: 10_000}},
        then={"error_burst": {DESCRIBE: 0}},
    )
    with DAG("mps_retry_describe_outage", schedule=None, start_date=START) as dag:
        operator(task_id="make", prompt="a teapot", wait_for_completion=True, timeout=1.0, **RETRY)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("make", -1): ("success", 2)}
    assert len(mps_conn.tasks()) == 1
    assert xcoms(run.run_id, dag.dag_id)[("make", -1, "return_value")] == mps_conn.tasks()[0]["TaskId"]
    assert try_record_variables(dag.dag_id, run.run_id) == []


def test_a_task_that_ends_fail_is_created_anew_by_the_retry_which_pays_once(airflow_home, mps_conn):
    operator = faults(mps_conn, first={"fail_rate": 1.0}, then={"fail_rate": 0.0})
    with DAG("mps_retry_fail_once", schedule=None, start_date=START) as dag:
        operator(task_id="make", prompt="a teapot", wait_for_completion=True, **RETRY)

    run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("make", -1): ("success", 2)}
    assert [task["Status"] for task in mps_conn.tasks()] == ["FAIL", "DONE"]
    assert [task["TaskId"] for task in paid(mps_conn)] == [
        xcoms(run.run_id, dag.dag_id)[("make", -1, "return_value")]
    ]
    assert try_record_variables(dag.dag_id, run.run_id) == []
