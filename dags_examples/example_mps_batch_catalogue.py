"""
Product photos for a whole catalogue (``data/catalogue.csv``, 300 rows) from one batch task.

* ``load_catalogue`` reads the catalogue (the ``limit`` param keeps only its first rows, e.g. to
  try the DAG on a few products first);
* ``build_requests`` writes one request per row;
* ``generate_catalogue_images`` (``MpsCreateAigcImageBatchOperator``) creates every MPS task from
  one Airflow task at the service quota of 20 requests per second (300 rows: about 15 s), then
  waits for all of them in the triggerer with a single trigger.  Up to ``max_failed_items`` rows
  may fail (each is listed in its ``failures`` XCom) before the task fails; a retry re-attaches to
  the tasks already created instead of paying for them again;
* ``saveable_task_ids`` keeps the TaskIds of the rows that got images, and ``save_catalogue_images``
  (``MpsAigcImagesToObjectStorageOperator``, mapped) copies each one's images to object storage
  before MPS deletes them 12 hours later: under the ``mps_image_base`` Airflow Variable or
  ``$AIRFLOW_HOME/mps-images``;
* ``report`` prints which rows failed and why.

Compared with ``example_mps_data_pipeline`` (one mapped task per row, throttled by a pool), the
batch needs no pool, keeps one worker slot busy for the submission only, and submits at the quota
whatever the per-task overhead of the deployment; see ``docs/batch-and-performance.md``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

CATALOGUE_FILE = Path(__file__).resolve().parent / "data" / "catalogue.csv"
DEFAULT_IMAGE_BASE = "file://" + os.path.join(
    os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "mps-images"
)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "tencentcloud", "mps"],
    doc_md=__doc__,
    params={
        # Optional (it allows null): the form neither marks it required nor blocks "Trigger" when
        # it is left empty.
        "limit": Param(
            None,
            title="Rows",
            description=(
                "Optional. Generate images for the first N rows of data/catalogue.csv only, e.g. 5 to "
                "try the DAG; leave empty (or 0) for the whole catalogue, one image per row."
            ),
            type=["null", "integer"],
            minimum=0,
        ),
    },
)
def example_mps_batch_catalogue() -> None:
    @task
    def load_catalogue(params: dict[str, Any] | None = None) -> list[dict[str, str]]:
        """Read the catalogue rows shipped with the example (the first ``limit`` rows if set)."""
        with CATALOGUE_FILE.open(newline="", encoding="utf-8") as catalogue:
            rows = list(csv.DictReader(catalogue))
        limit = int((params or {}).get("limit") or 0)
        return rows[:limit] if limit else rows

    @task
    def build_requests(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        """One request per row: the prompt describes the product; the rest is shared."""
        return [
            {
                "prompt": f"Studio product photo of a {row['colour']} {row['name'].lower()} made of "
                f"{row['material']}, on {row['setting']}, soft natural light",
            }
            for row in rows
        ]

    # [START howto_operator_mps_create_batch]
    generate_catalogue_images = MpsCreateAigcImageBatchOperator(
        task_id="generate_catalogue_images",
        requests=build_requests(load_catalogue()),
        shared_fields={
            "model_name": "GEM",
            "negative_prompt": "text, watermark, people",
            "extra_parameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
        },
        wait_for_completion=True,
        deferrable=True,
        poll_interval=30,
        timeout=3 * 3600,
        max_failed_items=5,
    )
    # [END howto_operator_mps_create_batch]

    @task
    def saveable_task_ids(mps_task_ids: list[str | None]) -> list[str]:
        """The TaskIds of the rows whose images are ready (failed rows are ``None``)."""
        return [task_id for task_id in mps_task_ids if task_id]

    # [START howto_transfer_mps_batch_images]
    save_catalogue_images = MpsAigcImagesToObjectStorageOperator.partial(
        task_id="save_catalogue_images",
        destination="{{ var.value.get('mps_image_base', '" + DEFAULT_IMAGE_BASE + "') }}",
        # The batch already waited: each TaskId is DONE, one describe call checks it.
        wait_for_completion=False,
        max_active_tis_per_dagrun=16,
    ).expand(mps_task_id=saveable_task_ids(generate_catalogue_images.output))
    # [END howto_transfer_mps_batch_images]

    @task(trigger_rule="all_done")
    def report(ti: Any = None) -> dict[str, Any]:
        """Say how many rows got images, and which failed with what."""
        failures = ti.xcom_pull(task_ids="generate_catalogue_images", key="failures") or []
        task_ids = ti.xcom_pull(task_ids="generate_catalogue_images") or []
        for failure in failures:
            print(f"Row {failure['index']} failed with {failure['code']}: {failure['message']}")
        return {"rows": len(task_ids), "failed_rows": [failure["index"] for failure in failures]}

    save_catalogue_images >> report()


example_mps_batch_catalogue()
