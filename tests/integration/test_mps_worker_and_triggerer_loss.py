"""
No second paid MPS task when Airflow loses the process that was waiting for the first one.

* A worker running a waiting (non-deferrable) operator is SIGKILLed mid-wait: the retry
  re-attaches to the MPS task the dead try created (issue 4 re-attach, issue 6 worker death).
* The triggerer running a deferred operator's trigger is SIGKILLed and a new one started: the
  trigger resumes polling the same TaskId in the new triggerer (issue 6 triggerer restart).

The emulator keeps the MPS task ``RUN`` (``run_seconds=600``) until the test has seen the
re-attach happen, then forces it ``DONE``, so no step depends on how fast the machine is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.integration

WORKER_KILL_DAG = "integration_mps_worker_kill"
TRIGGERER_RESTART_DAG = "integration_mps_triggerer_restart"
CREATE = "CreateAigcImageTask"
DESCRIBE = "DescribeAigcImageTask"


def _calls(emulator: EmulatorHandle, action: str) -> list[dict[str, Any]]:
    return [request for request in emulator.requests() if request["Action"] == action]


def _try_states(cluster: AirflowCluster, dag_id: str, run_id: str) -> list[tuple[int, str]]:
    return [(t["try_number"], t["state"]) for t in cluster.tries(dag_id, run_id, "generate")]


def test_killed_worker_retry_reattaches_to_the_mps_task_of_the_dead_try(
    cluster: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    mps_emulator.configure(run_seconds=600)
    cluster.wait_for_dags([WORKER_KILL_DAG])
    cluster.unpause(WORKER_KILL_DAG)
    prompt = "a lighthouse at dawn, drawn once even though its worker dies"
    run_id = cluster.trigger(WORKER_KILL_DAG, {"prompt": prompt})

    def first_try_is_polling() -> bool:
        ti = cluster.task_instances(WORKER_KILL_DAG, run_id).get("generate")
        return (
            ti is not None
            and ti["state"] == "running"
            and len(mps_emulator.tasks()) == 1
            and len(_calls(mps_emulator, DESCRIBE)) >= 1
            and len(cluster.task_processes(ti["id"])) == 1
        )

    cluster.wait_for(first_try_is_polling, timeout=90, what=lambda: "try 1 to create and poll the MPS task")
    ti = cluster.task_instances(WORKER_KILL_DAG, run_id)["generate"]
    assert ti["try_number"] == 1
    (worker,) = cluster.task_processes(ti["id"])
    worker.kill()  # SIGKILL: no cleanup, no exception handler, no chance to report anything
    worker.wait(timeout=10)

    def second_try_is_polling() -> bool:
        ti = cluster.task_instances(WORKER_KILL_DAG, run_id)["generate"]
        return ti["try_number"] == 2 and ti["state"] == "running"

    cluster.wait_for(
        second_try_is_polling,
        timeout=90,
        what=lambda: "try 2 to start\n" + cluster.explain(WORKER_KILL_DAG, run_id),
    )
    describes_before = len(_calls(mps_emulator, DESCRIBE))
    cluster.wait_for(
        lambda: len(_calls(mps_emulator, DESCRIBE)) > describes_before,
        timeout=60,
        what=lambda: "try 2 to poll the MPS task\n" + cluster.explain(WORKER_KILL_DAG, run_id),
    )
    assert len(mps_emulator.tasks()) == 1, cluster.explain(WORKER_KILL_DAG, run_id)
    (mps_task,) = mps_emulator.tasks()
    mps_emulator.force_status(mps_task["TaskId"], "DONE")

    watch = cluster.wait_for_run(WORKER_KILL_DAG, run_id)

    assert watch.state == "success", cluster.explain(WORKER_KILL_DAG, run_id)
    assert [(c["Action"], c["ErrorCode"]) for c in _calls(mps_emulator, CREATE)] == [(CREATE, None)]
    (mps_task,) = mps_emulator.tasks()
    assert mps_task["Request"]["Prompt"] == prompt
    assert mps_task["Status"] == "DONE"
    assert _try_states(cluster, WORKER_KILL_DAG, run_id) == [(1, "failed"), (2, "success")]
    assert cluster.xcom(WORKER_KILL_DAG, run_id, "generate") == mps_task["TaskId"]
    assert cluster.xcom(WORKER_KILL_DAG, run_id, "generate", "image_urls") == mps_task["ImageUrls"]
    second_try_log = cluster.task_log(WORKER_KILL_DAG, run_id, "generate", 2)
    reconnects = [line for line in second_try_log.splitlines() if "Reconnecting to existing job" in line]
    assert len(reconnects) == 1, second_try_log
    assert f"'TaskId': '{mps_task['TaskId']}'" in reconnects[0], second_try_log
    assert "Created MPS AIGC image task" not in second_try_log, second_try_log


def test_deferred_task_keeps_polling_the_same_mps_task_after_the_triggerer_is_replaced(
    cluster: AirflowCluster, mps_emulator: EmulatorHandle
) -> None:
    mps_emulator.configure(run_seconds=600)
    cluster.wait_for_dags([TRIGGERER_RESTART_DAG])
    cluster.unpause(TRIGGERER_RESTART_DAG)
    prompt = "a harbour in fog, polled by two triggerers in turn"
    run_id = cluster.trigger(TRIGGERER_RESTART_DAG, {"prompt": prompt})

    def deferred_and_polled() -> bool:
        ti = cluster.task_instances(TRIGGERER_RESTART_DAG, run_id).get("generate")
        return ti is not None and ti["state"] == "deferred" and len(_calls(mps_emulator, DESCRIBE)) >= 1

    cluster.wait_for(
        deferred_and_polled, timeout=90, what=lambda: "the task to defer and its trigger to poll"
    )
    cluster.kill_component("triggerer")  # SIGKILL of the triggerer and its trigger runner
    describes_by_dead_triggerer = len(_calls(mps_emulator, DESCRIBE))
    cluster.start_component("triggerer")
    cluster.wait_for(
        lambda: len(_calls(mps_emulator, DESCRIBE)) > describes_by_dead_triggerer,
        timeout=90,
        what=lambda: "the new triggerer to poll\n" + cluster.explain(TRIGGERER_RESTART_DAG, run_id),
    )
    assert cluster.task_instances(TRIGGERER_RESTART_DAG, run_id)["generate"]["state"] == "deferred"
    assert len(mps_emulator.tasks()) == 1, cluster.explain(TRIGGERER_RESTART_DAG, run_id)
    (mps_task,) = mps_emulator.tasks()
    mps_emulator.force_status(mps_task["TaskId"], "DONE")

    watch = cluster.wait_for_run(TRIGGERER_RESTART_DAG, run_id)

    assert watch.state == "success", cluster.explain(TRIGGERER_RESTART_DAG, run_id)
    assert [(c["Action"], c["ErrorCode"]) for c in _calls(mps_emulator, CREATE)] == [(CREATE, None)]
    (mps_task,) = mps_emulator.tasks()
    assert mps_task["Request"]["Prompt"] == prompt
    assert _try_states(cluster, TRIGGERER_RESTART_DAG, run_id) == [(1, "success")]
    assert cluster.xcom(TRIGGERER_RESTART_DAG, run_id, "generate") == mps_task["TaskId"]
    assert cluster.xcom(TRIGGERER_RESTART_DAG, run_id, "generate", "image_urls") == mps_task["ImageUrls"]
