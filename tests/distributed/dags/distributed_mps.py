"""
DAGs of the distributed suite (``tests/distributed``), parsed by its Airflow's DAG processor.

* ``distributed_batch_worker_1`` / ``_worker_2`` / ``_default``: one batch task
  (``MpsCreateAigcImageBatchOperator``, deferrable) on the queue its name says: ``worker-1`` and
  ``worker-2`` are each served by one Celery worker only, ``default`` by both.
* ``distributed_deferred``: ``count`` deferrable single operators, mapped, waiting in the triggerers.

Every prompt is ``"<label> #<index>"``, so the emulator's log tells which run created what.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator

RETRIES = {"retries": 1, "retry_delay": timedelta(seconds=2)}
PARAMS = {"count": Param(300, type="integer", minimum=1), "label": Param("run", type="string")}


@task
def build_prompts(params: dict[str, Any] | None = None) -> list[str]:
    """``count`` distinct prompts, each naming the run's ``label``."""
    params = params or {}
    return [f"{params['label']} #{index:04d}" for index in range(int(params["count"]))]


def batch_dag(queue: str) -> None:
    """Register the batch DAG whose tasks run on ``queue``."""

    @dag(
        dag_id=f"distributed_batch_{queue.replace('-', '_')}",
        schedule=None,
        catchup=False,
        params=PARAMS,
        default_args={"queue": queue},
        tags=["distributed"],
    )
    def distributed_batch() -> None:
        MpsCreateAigcImageBatchOperator(
            task_id="generate",
            requests=build_prompts(),
            wait_for_completion=True,
            deferrable=True,
            poll_interval=2,
            timeout=900,
            # A worker killed mid-batch leaves at most one item per submit thread possibly created
            # (sent, answer never recorded): the retry names them as failures rather than pay twice.
            max_failed_items=10,
            **RETRIES,
        )

    distributed_batch()


for _queue in ("worker-1", "worker-2", "default"):
    batch_dag(_queue)


@dag(
    dag_id="distributed_deferred",
    schedule=None,
    catchup=False,
    params=PARAMS,
    max_active_tasks=500,
    tags=["distributed"],
)
def distributed_deferred() -> None:
    MpsCreateAigcImageTaskOperator.partial(
        task_id="generate",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        timeout=900,
        **RETRIES,
    ).expand(prompt=build_prompts())


distributed_deferred()
