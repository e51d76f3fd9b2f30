"""
One product image per catalogue record: read records, build prompts, map the operator over them.

* ``load_products`` reads ``data/products.csv``; ``build_prompts`` writes one prompt per record;
* ``create_product_image`` is mapped over the prompts (``.expand``), one MPS task per product, in
  the ``mps_aigc`` pool so no more creates run at once than the service quota allows (20 requests/s).
  Pools must exist before tasks can use them; create it once:
  ``airflow pools set mps_aigc 20 "Tencent Cloud MPS AIGC quota"``;
* ``collect_task_ids`` receives every TaskId, in product order;
* ``save_product_images`` (mapped too) waits for each task and copies its images to object storage,
  under the ``mps_image_base`` Airflow Variable or ``$AIRFLOW_HOME/mps-images``.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

PRODUCTS_FILE = Path(__file__).resolve().parent / "data" / "products.csv"
DEFAULT_IMAGE_BASE = "file://" + os.path.join(
    os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "mps-images"
)
MPS_POOL = "mps_aigc"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "tencentcloud", "mps"],
    doc_md=__doc__,
)
def example_mps_data_pipeline() -> None:
    @task
    def load_products() -> list[dict[str, str]]:
        """Read the product records shipped with the example."""
        with PRODUCTS_FILE.open(newline="", encoding="utf-8") as products:
            return list(csv.DictReader(products))

    @task
    def build_prompts(products: list[dict[str, str]]) -> list[str]:
        """One catalogue-photo prompt per product record."""
        return [
            f"Studio product photo of a {p['colour']} {p['name'].lower()} made of {p['material']}, "
            f"on {p['setting']}, soft natural light, no text"
            for p in products
        ]

    # [START howto_operator_mps_create_mapped]
    create_product_image = MpsCreateAigcImageTaskOperator.partial(
        task_id="create_product_image",
        pool=MPS_POOL,
        model_name="GEM",
        extra_parameters={"AspectRatio": "1:1", "OutputFormat": "png"},
    ).expand(prompt=build_prompts(load_products()))
    # [END howto_operator_mps_create_mapped]

    @task
    def collect_task_ids(mps_task_ids: list[str]) -> list[str]:
        """Every product's TaskId, in product order."""
        task_ids = list(mps_task_ids)
        print(f"Created {len(task_ids)} MPS tasks: {task_ids}")
        return task_ids

    save_product_images = MpsAigcImagesToObjectStorageOperator.partial(
        task_id="save_product_images",
        destination="{{ var.value.get('mps_image_base', '" + DEFAULT_IMAGE_BASE + "') }}",
        poll_interval=5,
        timeout=3600,
    ).expand(mps_task_id=create_product_image.output)

    collect_task_ids(create_product_image.output) >> save_product_images


example_mps_data_pipeline()
