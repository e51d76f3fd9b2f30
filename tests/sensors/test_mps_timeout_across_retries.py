"""
The sensor's ``timeout`` counts from its first try's start, not from each retry's (Airflow 3.3+).

Driven directly (``execute`` with a small context: a task instance and a dict-backed
``task_state_store``) against the emulator; the first try's start is what the store holds.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException, TaskDeferred

from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from tests.operators.conftest import DictTaskStateStore, RecordingTaskInstance, needs_task_state_store

pytestmark = [needs_task_state_store, pytest.mark.usefixtures("fresh_rate_limiters")]

#: Where the sensor keeps its first try's start.
FIRST_TRY_KEY = "mps_aigc_image_task_sensor.first_try"


class SensorTaskInstance(RecordingTaskInstance):
    """Also the ``max_tries`` Airflow sets (``retries`` of the task, raised by a clear)."""

    def __init__(self, try_number: int, max_tries: int) -> None:
        super().__init__(try_number)
        self.max_tries = max_tries


def context(store: DictTaskStateStore, *, try_number: int, max_tries: int = 1) -> dict[str, Any]:
    return {"ti": SensorTaskInstance(try_number, max_tries), "task_state_store": store}


def running_task(emulator: Any) -> str:
    mps_task_id = MpsHook().create_aigc_image_task(prompt="a slow lighthouse")
    emulator.force_status(mps_task_id, "RUN")
    return mps_task_id


def sensor(mps_task_id: str, **kwargs: Any) -> MpsAigcImageTaskSensor:
    return MpsAigcImageTaskSensor(
        task_id="wait", mps_task_id=mps_task_id, poke_interval=0.2, retries=1, **kwargs
    )


def describes(emulator: Any) -> int:
    return sum(call["Action"] == "DescribeAigcImageTask" for call in emulator.requests())


def test_a_retry_after_the_timeout_passed_pokes_once_and_times_out(mps_conn):
    mps_task_id = running_task(mps_conn)
    # The first try started an hour ago; its timeout (3 s) is long spent.
    store = DictTaskStateStore({FIRST_TRY_KEY: {"FirstTry": 1, "StartedAt": time.time() - 3600}})

    with pytest.raises(AirflowSensorTimeout) as raised:
        sensor(mps_task_id, mode="poke", timeout=3).execute(context(store, try_number=2))

    assert str(raised.value) == (
        f"MPS task {mps_task_id} is not done 3 s after the sensor's first try started; retries do not "
        "restart the sensor's timeout."
    )
    assert describes(mps_conn) == 1


def test_with_soft_fail_a_spent_timeout_skips(mps_conn):
    mps_task_id = running_task(mps_conn)
    store = DictTaskStateStore({FIRST_TRY_KEY: {"FirstTry": 1, "StartedAt": time.time() - 3600}})

    with pytest.raises(AirflowSkipException):
        sensor(mps_task_id, deferrable=True, timeout=3, soft_fail=True).execute(context(store, try_number=2))


def test_a_deferred_retry_keeps_the_first_try_deadline(mps_conn):
    mps_task_id = running_task(mps_conn)
    first_started = time.time() - 30
    store = DictTaskStateStore({FIRST_TRY_KEY: {"FirstTry": 1, "StartedAt": first_started}})

    with pytest.raises(TaskDeferred) as raised:
        sensor(mps_task_id, deferrable=True, timeout=600).execute(context(store, try_number=2))

    assert raised.value.trigger.serialize()[1]["end_time"] == first_started + 600


def test_the_first_try_records_its_start_and_a_clear_starts_the_count_again(mps_conn):
    mps_task_id = running_task(mps_conn)
    store = DictTaskStateStore()
    before = time.time()

    with pytest.raises(TaskDeferred):
        sensor(mps_task_id, deferrable=True, timeout=600).execute(context(store, try_number=1))

    first = store.values[FIRST_TRY_KEY]
    assert first["FirstTry"] == 1
    assert before <= first["StartedAt"] <= time.time()
    # A clear after both tries failed: Airflow raises max_tries to try_number + retries (2 + 1).
    store.values[FIRST_TRY_KEY] = {"FirstTry": 1, "StartedAt": time.time() - 3600}

    with pytest.raises(TaskDeferred) as raised:
        sensor(mps_task_id, deferrable=True, timeout=600).execute(context(store, try_number=3, max_tries=3))

    assert store.values[FIRST_TRY_KEY]["FirstTry"] == 3
    assert raised.value.trigger.serialize()[1]["end_time"] == store.values[FIRST_TRY_KEY]["StartedAt"] + 600
