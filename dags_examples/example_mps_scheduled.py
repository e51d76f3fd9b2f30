"""
Daily image with Tencent Cloud MPS: pick a subject, generate its picture, keep the image.

* ``pick_subject`` (TaskFlow) picks today's subject from ``data/subjects.json`` by the run's date;
* ``create_image`` pulls it into its prompt with an XCom template and creates the MPS AIGC task;
* ``announce`` receives the TaskId (``create_image.output``);
* ``save_images`` waits for the task and copies its images to object storage before MPS deletes
  them (12 hours after they are made): under the ``mps_image_base`` Airflow Variable (for example
  ``AIRFLOW_VAR_MPS_IMAGE_BASE=s3://bucket/images``), by default ``$AIRFLOW_HOME/mps-images``.

It uses the ``tencentcloud_mps_default`` connection.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

SUBJECTS_FILE = Path(__file__).resolve().parent / "data" / "subjects.json"
DEFAULT_IMAGE_BASE = "file://" + os.path.join(
    os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "mps-images"
)


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "tencentcloud", "mps"],
    doc_md=__doc__,
)
def example_mps_scheduled() -> None:
    # [START howto_operator_mps_create_from_xcom]
    @task
    def pick_subject(**context: Any) -> str:
        """Pick the subject of the day: the same date always gives the same subject."""
        day = context.get("logical_date") or context["dag_run"].run_after
        subjects = json.loads(SUBJECTS_FILE.read_text(encoding="utf-8"))
        return subjects[day.toordinal() % len(subjects)]

    create_image = MpsCreateAigcImageTaskOperator(
        task_id="create_image",
        prompt="A watercolor postcard of {{ ti.xcom_pull(task_ids='pick_subject') }}, soft morning light",
        model_name="GEM",
        extra_parameters={"AspectRatio": "16:9", "OutputFormat": "png"},
    )
    # [END howto_operator_mps_create_from_xcom]

    @task
    def announce(mps_task_id: str) -> str:
        """Any downstream task can take the TaskId: here it is only logged."""
        print(f"Today's postcard is MPS task {mps_task_id}")
        return mps_task_id

    # [START howto_transfer_mps_images_to_object_storage]
    save_images = MpsAigcImagesToObjectStorageOperator(
        task_id="save_images",
        mps_task_id=create_image.output,
        destination="{{ var.value.get('mps_image_base', '" + DEFAULT_IMAGE_BASE + "') }}",
        poll_interval=5,
        timeout=3600,
    )
    # [END howto_transfer_mps_images_to_object_storage]

    pick_subject() >> create_image
    announce(create_image.output) >> save_images


example_mps_scheduled()
