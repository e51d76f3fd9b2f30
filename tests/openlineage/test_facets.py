"""The facet builder and the operators' ``get_openlineage_facets_on_complete``, without a DAG run."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

pytest.importorskip("airflow.providers.openlineage")

from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet
from openlineage.client.serde import Serde

from airflow_provider_mps.utils.openlineage import (
    AIGC_IMAGE_BATCH_FACET,
    AIGC_IMAGE_FACET,
    MpsAigcImageBatchRunFacet,
    MpsAigcImageRunFacet,
    batch_lineage,
    image_task_facet,
    image_task_lineage,
    storage_dataset,
)
from tests.conftest import fresh_interpreter_json

PROMPT = "A confidential product launch poster"
REQUEST = {"prompt": PROMPT, "model_name": "Hunyuan", "model_version": "3.0", "output_image_count": 2}
TASK_ID = "1-AigcImage-0123456789abcdef0123456789abcdef"


class _TaskInstance:
    """A finished task instance: its identity, host and the XComs its try pushed."""

    task_id = "create"
    map_index = -1
    hostname = "worker-7.example.com"

    def __init__(self, pushed: dict[str, Any]) -> None:
        self.pushed = pushed
        self.pulls: list[dict[str, Any]] = []

    def xcom_pull(self, **kwargs: Any) -> Any:
        self.pulls.append(kwargs)
        return self.pushed.get(kwargs["key"])


def fields(facet: Any) -> dict[str, Any]:
    """The facet as it is sent: serialized, without its nulls and its ``_producer``/``_schemaURL``."""
    return {key: value for key, value in Serde.to_dict(facet).items() if not key.startswith("_")}


def test_image_task_facet_leaves_the_prompt_out_by_default():
    facet = image_task_facet(REQUEST, mps_task_id=TASK_ID)

    assert fields(facet) == {
        "taskId": TASK_ID,
        "modelName": "Hunyuan",
        "modelVersion": "3.0",
        "imageCount": 2,
    }
    assert PROMPT not in Serde.to_json(facet)


def test_image_task_facet_includes_the_prompt_when_asked():
    facet = image_task_facet(REQUEST, mps_task_id=TASK_ID, include_prompt=True)

    assert fields(facet)["prompt"] == PROMPT


def test_image_count_is_the_produced_count_when_known_else_the_requested_one():
    assert image_task_facet(REQUEST, mps_task_id=TASK_ID, image_count=1).imageCount == 1
    assert image_task_facet(REQUEST, mps_task_id=TASK_ID).imageCount == 2
    assert image_task_facet({"prompt": PROMPT}, mps_task_id=TASK_ID).imageCount is None


def test_image_task_lineage_names_the_mps_task_in_run_facets_and_emits_no_dataset():
    lineage = image_task_lineage(REQUEST, mps_task_id=TASK_ID, image_urls=["https://a/0.png"])

    assert (lineage.inputs, lineage.outputs) == ([], [])
    assert lineage.run_facets == {
        "externalQuery": ExternalQueryRunFacet(externalQueryId=TASK_ID, source="tencentcloud-mps"),
        AIGC_IMAGE_FACET: MpsAigcImageRunFacet(
            taskId=TASK_ID, modelName="Hunyuan", modelVersion="3.0", imageCount=1
        ),
    }


def test_batch_lineage_lists_every_item_without_prompts_and_totals_the_images():
    requests = [REQUEST, {"prompt": "Second secret", "model_name": "GEM"}]

    lineage = batch_lineage(
        requests, mps_task_ids=[TASK_ID, None], image_urls=[["u0", "u1"], []], include_prompt=False
    )

    assert lineage.run_facets == {
        AIGC_IMAGE_BATCH_FACET: MpsAigcImageBatchRunFacet(
            tasks=[
                {"taskId": TASK_ID, "modelName": "Hunyuan", "modelVersion": "3.0", "imageCount": 2},
                {"taskId": None, "modelName": "GEM", "modelVersion": None, "imageCount": 0},
            ],
            imageCount=2,
        )
    }
    assert "secret" not in Serde.to_json(lineage.run_facets[AIGC_IMAGE_BATCH_FACET]).lower()


def test_batch_lineage_includes_each_prompt_when_asked_and_no_total_when_a_count_is_unknown():
    requests = [REQUEST, {"prompt": "Second secret"}]

    facet = batch_lineage(requests, mps_task_ids=[TASK_ID, TASK_ID], image_urls=None, include_prompt=True)

    batch = facet.run_facets[AIGC_IMAGE_BATCH_FACET]
    assert ([task["prompt"] for task in batch.tasks], batch.imageCount) == ([PROMPT, "Second secret"], None)


@pytest.mark.parametrize(
    ("url", "namespace", "name"),
    [
        ("file:///srv/images/d/r/t/0.png", "file://worker-7.example.com", "/srv/images/d/r/t/0.png"),
        ("/srv/images/d/r/t/0.png", "file://worker-7.example.com", "/srv/images/d/r/t/0.png"),
        ("s3://bucket/images/d/r/t/0.png", "s3://bucket", "images/d/r/t/0.png"),
        ("gs://bucket/images/0.webp", "gs://bucket", "images/0.webp"),
    ],
)
def test_saved_objects_are_named_in_their_stores_namespace(url, namespace, name):
    dataset = storage_dataset(url, hostname="worker-7.example.com", size=10)

    assert (dataset.namespace, dataset.name) == (namespace, name)
    assert fields(dataset.outputFacets["outputStatistics"]) == {"size": 10, "fileCount": 1}


def test_create_operator_lineage_after_a_deferral_reads_the_tries_xcoms():
    operator = MpsCreateAigcImageTaskOperator(
        task_id="create", prompt=PROMPT, model_name="GEM", wait_for_completion=True, deferrable=True
    )
    ti = _TaskInstance({"return_value": TASK_ID, "image_urls": ["https://a/0.png", "https://a/1.png"]})

    lineage = operator.get_openlineage_facets_on_complete(ti)

    assert fields(lineage.run_facets[AIGC_IMAGE_FACET]) == {
        "taskId": TASK_ID,
        "modelName": "GEM",
        "imageCount": 2,
    }
    assert ti.pulls == [
        {"task_ids": "create", "key": "image_urls", "map_indexes": -1},
        {"task_ids": "create", "key": "return_value", "map_indexes": -1},
    ]


def test_create_operator_lineage_includes_the_prompt_only_when_asked():
    ti = _TaskInstance({"return_value": TASK_ID})
    default = MpsCreateAigcImageTaskOperator(task_id="create", prompt=PROMPT)
    asked = MpsCreateAigcImageTaskOperator(task_id="create", prompt=PROMPT, openlineage_include_prompt=True)

    assert "prompt" not in fields(default.get_openlineage_facets_on_complete(ti).run_facets[AIGC_IMAGE_FACET])
    assert (
        fields(asked.get_openlineage_facets_on_complete(ti).run_facets[AIGC_IMAGE_FACET])["prompt"] == PROMPT
    )


def test_batch_operator_lineage_reads_the_task_ids_it_returned():
    operator = MpsCreateAigcImageBatchOperator(
        task_id="create", requests=[PROMPT, "Another"], shared_fields={"model_name": "GEM"}
    )
    ti = _TaskInstance({"return_value": [TASK_ID, None]})

    batch = operator.get_openlineage_facets_on_complete(ti).run_facets[AIGC_IMAGE_BATCH_FACET]

    assert [(task["taskId"], task["modelName"]) for task in batch.tasks] == [(TASK_ID, "GEM"), (None, "GEM")]
    assert PROMPT not in Serde.to_json(batch)


def test_transfer_lineage_outputs_every_image_the_try_saved_without_reading_xcoms():
    operator = MpsAigcImagesToObjectStorageOperator(
        task_id="create", mps_task_id=TASK_ID, destination="s3://bucket/images"
    )
    operator._saved = [
        {"path": f"s3://bucket/images/d/r/{TASK_ID}/{index}.png", "size": 5} for index in range(2)
    ]
    ti = _TaskInstance({"return_value": []})

    lineage = operator.get_openlineage_facets_on_complete(ti)

    assert [(output.namespace, output.name) for output in lineage.outputs] == [
        ("s3://bucket", f"images/d/r/{TASK_ID}/0.png"),
        ("s3://bucket", f"images/d/r/{TASK_ID}/1.png"),
    ]
    assert fields(lineage.run_facets[AIGC_IMAGE_FACET]) == {"taskId": TASK_ID, "imageCount": 2}
    # Read from the operator that ran: an XCom read hangs in the listener's forked child.
    assert ti.pulls == []


def test_importing_the_operators_does_not_import_openlineage():
    # Airflow's providers manager reads every provider's get_provider_info; that is not ours.
    script = (
        "import json, sys\n"
        "import airflow_provider_mps.operators.mps, airflow_provider_mps.operators.mps_batch\n"
        "import airflow_provider_mps.transfers.mps_to_object_storage\n"
        "print(json.dumps(sorted(name for name in sys.modules if name.split('.')[0] == 'openlineage'\n"
        "             or name.startswith(('airflow.providers.openlineage.extractors',\n"
        "                                 'airflow.providers.common.compat.openlineage'))\n"
        "             or name == 'airflow_provider_mps.utils.openlineage')))\n"
    )

    assert fresh_interpreter_json(script) == []
