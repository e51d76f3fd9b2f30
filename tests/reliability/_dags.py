"""The DAGs the fault cases run: the provider's operator, trigger and sensor as users wire them."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.reliability._harness import FailureRecorder

START = pendulum.datetime(2025, 1, 1, tz="UTC")
#: Every Airflow task of the suite polls this often (seconds).
POLL = 0.2

#: The waiting styles a case can wire: sync wait, deferred wait, create then sensor (poke mode).
ACTORS = ("sync", "deferred", "sensor")
#: The Airflow task that creates the MPS task of each actor.
CREATOR = {
    "sync": "sync",
    "deferred": "deferred",
    "sensor": "create_for_sensor",
    "deferred_sensor": "create_for_deferred_sensor",
    "create_only": "create_only",
}


def fault_dag(
    dag_id: str,
    recorder: FailureRecorder,
    actors: Iterable[str] = ACTORS,
    *,
    retries: int = 0,
    timeout: float = 60.0,
    sensor_timeout: float = 60.0,
    mapped: int = 0,
    **operator_kwargs: Any,
) -> DAG:
    """
    A DAG with one Airflow task per actor, each creating (and waiting for) its own MPS task.

    * ``sync`` — ``MpsCreateAigcImageTaskOperator(wait_for_completion=True)``, polling on the worker;
    * ``deferred`` — the same with ``deferrable=True``: the trigger polls;
    * ``sensor`` — ``create_for_sensor`` creates without waiting, ``sensor``
      (``MpsAigcImageTaskSensor``, poke mode) waits for its ``output``;
    * ``deferred_sensor`` — the same with a deferrable sensor: the trigger polls;
    * ``create_only`` — creates without waiting.

    Each prompt names the case and the actor, so the emulator's tasks say who created them.

    :param retries: Airflow retries of every task (retry delay 0).
    :param timeout: the operators' ``timeout``.
    :param sensor_timeout: the sensor's ``timeout``.
    :param mapped: also map a sync and a deferred operator over this many prompts each
        (``mapped_sync``, ``mapped_deferred``).
    :param operator_kwargs: more keyword arguments for the creating operators.
    """
    common = {"retries": retries, "retry_delay": datetime.timedelta(0), **recorder.callbacks()}
    waiting = {"wait_for_completion": True, "poll_interval": POLL, "timeout": timeout}
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        for actor in actors:
            prompt = f"{dag_id}: {actor}"
            if actor == "sync":
                MpsCreateAigcImageTaskOperator(
                    task_id="sync", prompt=prompt, **waiting, **common, **operator_kwargs
                )
            elif actor == "deferred":
                MpsCreateAigcImageTaskOperator(
                    task_id="deferred", prompt=prompt, deferrable=True, **waiting, **common, **operator_kwargs
                )
            elif actor in ("sensor", "deferred_sensor"):
                create = MpsCreateAigcImageTaskOperator(
                    task_id=CREATOR[actor], prompt=prompt, **common, **operator_kwargs
                )
                MpsAigcImageTaskSensor(
                    task_id=actor,
                    mps_task_id=create.output,
                    poke_interval=POLL,
                    timeout=sensor_timeout,
                    mode="poke",
                    deferrable=actor == "deferred_sensor",
                    **common,
                )
            elif actor == "create_only":
                MpsCreateAigcImageTaskOperator(
                    task_id="create_only", prompt=prompt, **common, **operator_kwargs
                )
            else:  # pragma: no cover - a typo in a test
                raise ValueError(f"Unknown actor {actor!r}; the actors are {sorted(CREATOR)}.")
        if mapped:
            for name, deferrable in (("mapped_sync", False), ("mapped_deferred", True)):
                MpsCreateAigcImageTaskOperator.partial(
                    task_id=name, deferrable=deferrable, **waiting, **common, **operator_kwargs
                ).expand(prompt=[f"{dag_id}: {name} {index}" for index in range(mapped)])
    return dag
