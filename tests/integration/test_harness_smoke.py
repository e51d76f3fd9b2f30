"""The harness itself: a core deferrable sensor runs through the real scheduler, triggerer and API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.integration

SMOKE_DAG = "integration_smoke_deferrable"


def test_core_deferrable_sensor_defers_frees_its_worker_and_succeeds(cluster: AirflowCluster) -> None:
    cluster.wait_for_dags([SMOKE_DAG])
    cluster.unpause(SMOKE_DAG)

    run_id = cluster.trigger(SMOKE_DAG)
    watch = cluster.wait_for_run(SMOKE_DAG, run_id)

    assert watch.state == "success", cluster.explain(SMOKE_DAG, run_id)
    states = watch.ti_states["wait"]
    assert "deferred" in states, cluster.explain(SMOKE_DAG, run_id)
    assert states[-1] == "success", cluster.explain(SMOKE_DAG, run_id)
    assert watch.freed_while_deferred == {"wait": True}, cluster.explain(SMOKE_DAG, run_id)
    assert [(t["try_number"], t["state"]) for t in cluster.tries(SMOKE_DAG, run_id, "wait")] == [
        (1, "success")
    ]
    log = cluster.task_log(SMOKE_DAG, run_id, "wait", 1)
    wanted = ("[info] Pausing task as DEFERRED", "[info] trigger starting", "[info] Trigger fired")
    milestones = [line.split(" ", 1)[1] for line in log.splitlines() if line.startswith(wanted)]
    assert milestones[0] == "Pausing task as DEFERRED. ", log
    assert milestones[1] == "trigger starting", log
    assert milestones[2].startswith("Trigger fired event "), log
    assert len(milestones) == 3, log
