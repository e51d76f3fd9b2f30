"""
Generate an image from the Airflow UI: the trigger form asks for the prompt and the options.

Trigger the DAG with "Trigger DAG" and fill the form (prompt, model, negative prompt, enhance
switch, reference image URLs, aspect ratio, resolution); the operator is templated from ``params``.
It waits in the triggerer (``deferrable=True``), so no worker slot is held while MPS draws, then
shows "MPS Generated Image" and "MPS Console" links on the task.  The images stay on MPS for
12 hours; use ``MpsAigcImagesToObjectStorageOperator`` (see ``example_mps_scheduled``) to keep them.

From the command line: ``airflow dags trigger example_mps_ui_triggered --conf '{"prompt": "..."}'``.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_mps.capabilities import (
    ALL_RESOLUTIONS,
    KLING_VIDU_ASPECT_RATIOS,
    KNOWN_MODEL_NAMES,
    MAX_PROMPT_CHARACTERS,
)
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator


# [START howto_operator_mps_trigger_form]
@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "tencentcloud", "mps"],
    doc_md=__doc__,
    params={
        "prompt": Param(
            "A cozy reading nook by a rainy window, warm lamp light, watercolor",
            title="Prompt",
            description=(
                f"What to draw, in any language and over several lines if you like: "
                f"1 to {MAX_PROMPT_CHARACTERS} characters."
            ),
            type="string",
            format="multiline",
            minLength=1,
            maxLength=MAX_PROMPT_CHARACTERS,
        ),
        "model_name": Param(
            "GEM",
            title="Model",
            description="The MPS model that draws the image.",
            type="string",
            enum=list(KNOWN_MODEL_NAMES),
        ),
        # Optional fields allow null: the form then neither marks them required nor blocks
        # "Trigger" while they are empty (an empty text field is sent as null).
        "negative_prompt": Param(
            None,
            title="Negative prompt",
            description=(
                "Optional. What the image must not show, e.g. text, watermark, people. "
                "Not every model reads it."
            ),
            type=["null", "string"],
            maxLength=MAX_PROMPT_CHARACTERS,
        ),
        "enhance_prompt": Param(
            False,
            title="Enhance prompt",
            description="Switch on to let MPS rewrite the prompt before drawing.",
            type="boolean",
        ),
        "image_urls": Param(
            None,
            title="Reference image URLs",
            description=(
                "Optional. Images for the model to draw from: one http(s) URL of a jpeg, png or "
                "webp image per line (GEM takes up to 3)."
            ),
            type=["null", "array"],
            # An http(s) URL, or a blank line (skipped).
            items={"type": "string", "pattern": "^$|^https?://"},
        ),
        # Free text with suggestions rather than a fixed list: the service adds values over time.
        "aspect_ratio": Param(
            "1:1",
            title="Aspect ratio",
            description=(
                "Width:height, e.g. 1:1, 16:9 or 3:4 (Kling and Vidu take "
                f"{', '.join(KLING_VIDU_ASPECT_RATIOS)}). Leave empty for the model's default."
            ),
            type=["null", "string"],
            examples=list(KLING_VIDU_ASPECT_RATIOS),
        ),
        "resolution": Param(
            "2K",
            title="Resolution",
            description=(
                "wand-vega-image takes 1K, 2K or 4K; the other models 720P, 1080P, 2K or 4K. "
                "Leave empty for the model's default."
            ),
            type=["null", "string"],
            examples=list(ALL_RESOLUTIONS),
        ),
    },
)
def example_mps_ui_triggered() -> None:
    # An empty optional field arrives as None: "or ''" / "or []" turn it into "not given".
    create_image = MpsCreateAigcImageTaskOperator(
        task_id="create_image",
        prompt="{{ params.prompt }}",
        model_name="{{ params.model_name }}",
        negative_prompt="{{ params.negative_prompt or '' }}",
        enhance_prompt="{{ params.enhance_prompt }}",
        image_infos="{{ (params.image_urls or []) | tojson }}",
        extra_parameters={
            "AspectRatio": "{{ params.aspect_ratio or '' }}",
            "Resolution": "{{ params.resolution or '' }}",
        },
        wait_for_completion=True,
        deferrable=True,
        poll_interval=5,
        timeout=1800,
    )
    # [END howto_operator_mps_trigger_form]

    @task
    def show_images(mps_task_id: str, **context: Any) -> list[str]:
        """Log where the images are (also one click away: the task's "MPS Generated Image" link)."""
        image_urls = context["ti"].xcom_pull(task_ids="create_image", key="image_urls")
        for url in image_urls:
            print(f"MPS task {mps_task_id} drew {url}")
        return image_urls

    show_images(create_image.output)


example_mps_ui_triggered()
