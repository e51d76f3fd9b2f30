"""A waiting (non-deferrable) MPS operator with one retry: the worker-kill re-attach proof."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import Param, dag

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator


@dag(
    dag_id="integration_mps_worker_kill",
    schedule=None,
    catchup=False,
    params={"prompt": Param("a lighthouse at dawn", type="string")},
    tags=["integration"],
)
def integration_mps_worker_kill():
    MpsCreateAigcImageTaskOperator(
        task_id="generate",
        prompt="{{ params.prompt }}",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=0.5,
        timeout=300,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )


integration_mps_worker_kill()
