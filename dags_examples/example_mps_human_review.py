"""
Human review in the Airflow UI: generate candidates, a person picks, publish only those.

Trigger it from its form (prompt, model, how many candidates).  ``create_candidates`` makes one
MPS task per candidate, one image each, and waits for them in the triggerer; ``review`` then waits
for a person under Browse > Required Actions, where every candidate is shown inline with the prompt,
the model and its TaskId:

* **approved** (some candidates chosen): ``save_chosen`` saves exactly the chosen candidates' images
  under the ``mps_image_base`` Airflow Variable (by default ``$AIRFLOW_HOME/mps-images``), and each
  saved candidate is an event of the ``mps://example_mps_human_review/approved`` Asset;
* **rejected** ("Reject all" with a revised prompt): ``regenerate`` starts a new run of this DAG
  with the revised prompt, and this run ends without saving anything.

The person has 8 hours to answer (``response_timeout``; at most 11, as MPS deletes the images
12 hours after making them).  Needs Airflow 3.1+ with apache-airflow-providers-standard 1.5.0+.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException, Asset, Param, XComArg, dag, task
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from airflow_provider_mps.capabilities import KNOWN_MODEL_NAMES, MAX_PROMPT_CHARACTERS
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.operators.review import REVISED_PROMPT_XCOM_KEY, MpsAigcImageReviewOperator
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

DAG_ID = "example_mps_human_review"
DEFAULT_IMAGE_BASE = "file://" + os.path.join(
    os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow"), "mps-images"
)
APPROVED_IMAGES = Asset(f"mps://{DAG_ID}/approved")


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "tencentcloud", "mps"],
    doc_md=__doc__,
    params={
        "prompt": Param(
            "A ceramic teapot on a linen tablecloth, studio light, product photo",
            title="Prompt",
            description=f"What to draw: 1 to {MAX_PROMPT_CHARACTERS} characters.",
            type="string",
            format="multiline",
            minLength=1,
            maxLength=MAX_PROMPT_CHARACTERS,
        ),
        "model_name": Param(
            "GEM",
            title="Model",
            description="The MPS model that draws the candidates.",
            type="string",
            enum=list(KNOWN_MODEL_NAMES),
        ),
        "candidates": Param(
            3,
            title="Candidates",
            description="How many images to draw for the review (1 to 6).",
            type="integer",
            minimum=1,
            maximum=6,
        ),
    },
)
def example_mps_human_review() -> None:
    @task
    def candidate_requests(params: dict[str, Any] | None = None) -> list[str]:
        """One request per candidate: the same prompt, drawn anew each time."""
        params = params or {}
        return [params["prompt"]] * int(params["candidates"])

    create_candidates = MpsCreateAigcImageBatchOperator(
        task_id="create_candidates",
        requests=candidate_requests(),
        shared_fields={"model_name": "{{ params.model_name }}", "output_image_count": 1},
        wait_for_completion=True,
        deferrable=True,
        poll_interval=5,
        timeout=1800,
    )

    # [START howto_operator_mps_human_review]
    review = MpsAigcImageReviewOperator(
        task_id="review",
        mps_task_ids=create_candidates.output,
        image_urls=XComArg(create_candidates, key="image_urls"),
        prompt="{{ params.prompt }}",
        model_name="{{ params.model_name }}",
        response_timeout=timedelta(hours=8),
    )

    # review.output is the chosen candidates' TaskIds: nothing chosen (rejected), nothing saved.
    MpsAigcImagesToObjectStorageOperator.partial(
        task_id="save_chosen",
        destination="{{ var.value.get('mps_image_base', '" + DEFAULT_IMAGE_BASE + "') }}",
        wait_for_completion=False,
        outlets=[APPROVED_IMAGES],
    ).expand(mps_task_id=review.output)

    @task
    def revised_request(params: dict[str, Any] | None = None, ti: Any = None) -> dict[str, Any]:
        """The next run's form values with the revised prompt; skipped unless the person rejected."""
        revised_prompt = ti.xcom_pull(task_ids="review", key=REVISED_PROMPT_XCOM_KEY)
        if not revised_prompt:
            raise AirflowSkipException("No revised prompt (candidates kept, or none asked): no new run.")
        return {**dict(params or {}), "prompt": revised_prompt}

    conf = revised_request()
    review >> conf
    TriggerDagRunOperator(task_id="regenerate", trigger_dag_id=DAG_ID, conf=conf)
    # [END howto_operator_mps_human_review]


example_mps_human_review()
