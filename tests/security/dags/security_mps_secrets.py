"""
The paths where a credential could slip out, run on purpose (used by the tests in ``tests/security``).

* ``sdk_debug_stream`` turns the Tencent Cloud SDK's own debug logger on with the user's own
  handler (``set_stream_logger`` to stderr, which the task log captures), then creates and
  describes a task through both SDK clients: every request header is dumped;
* ``wrong_key`` signs with a wrong SecretKey (connection ``mps_wrong_key``): the service refuses it
  and the exception is logged with its traceback;
* ``failing_task`` waits for a task that ends ``FAIL``: the service's message becomes the error;
* ``deferred_sensor`` waits for ``sdk_debug_stream``'s task in the triggerer: a trigger row holds
  the serialized trigger while it waits.
"""

from __future__ import annotations

import asyncio
import sys

import pendulum
from airflow.sdk import dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["security"])
def security_mps_secrets() -> None:
    @task
    def sdk_debug_stream() -> str:
        from airflow_provider_mps.hooks.mps import MpsHook

        hook = MpsHook()
        hook.get_conn().set_stream_logger(sys.stderr)
        mps_task_id = hook.create_aigc_image_task(prompt="a lock without a key", model_name="GEM")
        hook.describe_aigc_image_task(mps_task_id)

        async def describe_async() -> None:
            try:
                await hook.adescribe_aigc_image_task(mps_task_id)
            finally:
                await hook.aclose()

        asyncio.run(describe_async())
        return mps_task_id

    created = sdk_debug_stream()
    MpsCreateAigcImageTaskOperator(task_id="wrong_key", mps_conn_id="mps_wrong_key", prompt="a forged key")
    MpsCreateAigcImageTaskOperator(
        task_id="failing_task",
        prompt="a broken key [emulator:fail]",
        wait_for_completion=True,
        poll_interval=0.5,
        timeout=120,
    )
    MpsAigcImageTaskSensor(
        task_id="deferred_sensor", mps_task_id=created, deferrable=True, poke_interval=0.5, timeout=300
    )


security_mps_secrets()
