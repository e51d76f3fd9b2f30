"""Harness smoke test: a core deferrable sensor proves the scheduler, triggerer and API work."""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import dag


@dag(dag_id="integration_smoke_deferrable", schedule=None, catchup=False, tags=["integration"])
def integration_smoke_deferrable():
    WaitSensor(task_id="wait", time_to_wait=timedelta(seconds=3), deferrable=True)


integration_smoke_deferrable()
