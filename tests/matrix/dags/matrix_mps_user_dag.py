"""
The DAG from issue 10, written as a user writes it: upstream task -> deferrable create -> sensor -> transfer.

``pick_subject`` returns the subject; the create operator pulls it into its prompt through XCom and
waits for the image in the triggerer (``deferrable=True``); the sensor checks the TaskId it
returned; the transfer copies the images to the folder in the ``mps_image_base`` Variable.

It imports ``dag`` and ``task`` through ``airflow.providers.common.compat.sdk``, which resolves to
``airflow.sdk`` on Airflow 3 and to ``airflow.decorators`` on 2.11: the same objects a user of
either line imports, so one file runs on every line of the matrix.
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mps", "matrix"],
)
def matrix_mps_user_dag() -> None:
    @task
    def pick_subject() -> str:
        return "a ceramic teapot"

    create = MpsCreateAigcImageTaskOperator(
        task_id="create_image",
        prompt="A watercolor of {{ ti.xcom_pull(task_ids='pick_subject') }}, studio lighting",
        model_name="Hunyuan",
        extra_parameters={"AspectRatio": "1:1"},
        deferrable=True,
        wait_for_completion=True,
        poll_interval=1,
    )
    wait = MpsAigcImageTaskSensor(task_id="wait_for_image", mps_task_id=create.output, poke_interval=1)
    save = MpsAigcImagesToObjectStorageOperator(
        task_id="save_images",
        mps_task_id=create.output,
        destination="{{ var.value.mps_image_base }}/{{ dag.dag_id }}",
        poll_interval=1,
    )
    pick_subject() >> create >> wait >> save


matrix_mps_user_dag()
