"""A deferrable MPS operator: the triggerer-restart proof."""

from __future__ import annotations

from airflow.sdk import Param, dag

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator


@dag(
    dag_id="integration_mps_triggerer_restart",
    schedule=None,
    catchup=False,
    params={"prompt": Param("a harbour in fog", type="string")},
    tags=["integration"],
)
def integration_mps_triggerer_restart():
    MpsCreateAigcImageTaskOperator(
        task_id="generate",
        prompt="{{ params.prompt }}",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=0.5,
        timeout=300,
    )


integration_mps_triggerer_restart()
