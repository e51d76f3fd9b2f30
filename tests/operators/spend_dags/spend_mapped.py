"""30 mapped creates of one image each, under an image budget (tests/operators/test_spend_dag_runs.py)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator

with DAG("spend_mapped", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    MpsCreateAigcImageTaskOperator.partial(task_id="make", model_name="Hunyuan", retries=0).expand(
        prompt=[f"Catalogue shot of product {number}" for number in range(30)]
    )
