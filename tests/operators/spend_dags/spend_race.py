"""15 mapped one-image creates for two Airflow processes at once (tests/operators/test_spend_dag_runs.py)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator

with DAG("spend_race", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    MpsCreateAigcImageTaskOperator.partial(task_id="make", model_name="Hunyuan", retries=0).expand(
        prompt=[f"Banner variant {number}" for number in range(15)]
    )
