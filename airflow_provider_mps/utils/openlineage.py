"""
OpenLineage facets of the MPS operators, built when an OpenLineage listener asks for them.

This module imports the OpenLineage client: only the operators' ``get_openlineage_facets_on_complete``
import it, inside the method, so parsing a DAG file never needs OpenLineage and the provider does not
depend on it (install the ``openlineage`` extra to get lineage).

Naming, after the OpenLineage naming conventions (https://openlineage.io/docs/spec/naming):

* A saved image is an output dataset in the namespace of the store it was written to: ``s3://{bucket}``
  with the object key as name (``gs://``, ... alike, as ``ObjectStoragePath.namespace`` and ``.key``
  give them), and a local file ``file://{host}`` with its absolute path as name, ``{host}`` being the
  worker that wrote it as Airflow records it (``task_instance.hostname``).
* The MPS task is not a dataset: the conventions name datasets after the datasource holding the data,
  and an MPS task is a remote job run whose images sit at signed URLs deleted after 12 hours.  It is
  a run facet instead: the standard ``externalQuery`` facet (``source`` ``tencentcloud-mps``, the
  TaskId as ``externalQueryId``), as the official providers report a BigQuery job or an Athena query,
  and the custom ``tencentcloudMps_aigcImage`` facet with the model, its version and the image count.
* The prompt is left out unless the operator is given ``openlineage_include_prompt=True``: prompts
  can be confidential, and lineage backends are read by many more people than the DAG's logs.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.openlineage.facet import (
    ExternalQueryRunFacet,
    OutputDataset,
    OutputStatisticsOutputDatasetFacet,
    RunFacet,
)
from airflow.providers.common.compat.sdk import ObjectStoragePath
from airflow.providers.openlineage.extractors import OperatorLineage
from attrs import define, field

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from openlineage.client.generated.base import OutputDatasetFacet

#: The ``source`` of the ``externalQuery`` run facet naming an MPS task.
MPS_SOURCE = "tencentcloud-mps"

#: Run facet key of :class:`MpsAigcImageRunFacet` (custom facets are prefixed with their producer).
AIGC_IMAGE_FACET = "tencentcloudMps_aigcImage"

#: Run facet key of :class:`MpsAigcImageBatchRunFacet`.
AIGC_IMAGE_BATCH_FACET = "tencentcloudMps_aigcImageBatch"

#: ``ObjectStoragePath.protocol`` of local files.
_LOCAL_PROTOCOLS = ("file", "local", "")


@define
class MpsAigcImageRunFacet(RunFacet):
    """
    One MPS AIGC image task of a run: its model, the model's version and how many images it made.

    :param taskId: the MPS TaskId.
    :param modelName: ``ModelName`` of the request; ``None`` when the service chose its default.
    :param modelVersion: ``ModelVersion`` of the request; ``None`` for the model's stable version.
    :param imageCount: the images the task produced when known (the operator waited for it, or the
        transfer saved them), else the ``OutputImageCount`` requested, else ``None``.
    :param prompt: the prompt, only with ``openlineage_include_prompt=True``.
    """

    # camelCase, as the fields of the standard OpenLineage facets.
    taskId: str | None = field(default=None)
    modelName: str | None = field(default=None)
    modelVersion: str | None = field(default=None)
    imageCount: int | None = field(default=None)
    prompt: str | None = field(default=None)


@define
class MpsAigcImageBatchRunFacet(RunFacet):
    """
    The MPS AIGC image tasks of a batch run, in input order, and the images they made in all.

    :param tasks: one ``{"taskId", "modelName", "modelVersion", "imageCount"}`` per item (and
        ``"prompt"`` with ``openlineage_include_prompt=True``); ``taskId`` is ``None`` for an item
        that failed to be created.
    :param imageCount: the images of every item together, when every count is known.
    """

    tasks: list[dict[str, Any]] = field(factory=list)
    imageCount: int | None = field(default=None)


def image_task_facet(
    request: dict[str, Any],
    *,
    mps_task_id: str | None,
    image_count: int | None = None,
    include_prompt: bool = False,
) -> MpsAigcImageRunFacet:
    """
    Return the facet of one task from its request fields (snake_case, as the operators hold them).

    :param request: the rendered request fields: ``model_name``, ``model_version``,
        ``output_image_count`` and ``prompt`` are read.
    :param mps_task_id: the TaskId, if the task was created.
    :param image_count: the number of images produced, if known; else the requested count is used.
    :param include_prompt: put the prompt in the facet.
    """
    if image_count is None:
        requested = request.get("output_image_count")
        image_count = requested if isinstance(requested, int) and not isinstance(requested, bool) else None
    return MpsAigcImageRunFacet(
        taskId=mps_task_id,
        modelName=_text(request.get("model_name")),
        modelVersion=_text(request.get("model_version")),
        imageCount=image_count,
        prompt=_text(request.get("prompt")) if include_prompt else None,
    )


def image_task_lineage(
    request: dict[str, Any],
    *,
    mps_task_id: str | None,
    image_urls: Sequence[str] | None,
    include_prompt: bool = False,
) -> OperatorLineage:
    """
    Return the lineage of the create operator: its run facets, no datasets (see the module's notes).

    :param request: the rendered request fields.
    :param mps_task_id: the TaskId the operator returned.
    :param image_urls: the image URLs when the operator waited for the task, else ``None``.
    :param include_prompt: put the prompt in the facet.
    """
    facet = image_task_facet(
        request,
        mps_task_id=mps_task_id,
        image_count=None if image_urls is None else len(image_urls),
        include_prompt=include_prompt,
    )
    return OperatorLineage(run_facets=_run_facets(mps_task_id, {AIGC_IMAGE_FACET: facet}))


def batch_lineage(
    requests: Sequence[dict[str, Any]],
    *,
    mps_task_ids: Sequence[str | None],
    image_urls: Sequence[Sequence[str]] | None,
    include_prompt: bool = False,
) -> OperatorLineage:
    """
    Return the lineage of the batch operator: one facet listing every item's task.

    :param requests: the prepared request fields of every item, in input order.
    :param mps_task_ids: the TaskId of each item (``None`` for a failed item).
    :param image_urls: the image URLs of each item when the operator waited, else ``None``.
    :param include_prompt: put each item's prompt in the facet.
    """
    tasks: list[dict[str, Any]] = []
    items: list[MpsAigcImageRunFacet] = []
    for index, request in enumerate(requests):
        produced = None if image_urls is None or index >= len(image_urls) else len(image_urls[index])
        mps_task_id = mps_task_ids[index] if index < len(mps_task_ids) else None
        item = image_task_facet(
            request, mps_task_id=mps_task_id, image_count=produced, include_prompt=include_prompt
        )
        entry = {
            "taskId": item.taskId,
            "modelName": item.modelName,
            "modelVersion": item.modelVersion,
            "imageCount": item.imageCount,
        }
        if include_prompt:
            entry["prompt"] = item.prompt
        tasks.append(entry)
        items.append(item)
    counts = [item.imageCount for item in items if item.imageCount is not None]
    total = sum(counts) if len(counts) == len(items) else None
    facet = MpsAigcImageBatchRunFacet(tasks=tasks, imageCount=total)
    return OperatorLineage(run_facets={AIGC_IMAGE_BATCH_FACET: facet})


def saved_images_lineage(
    saved: Iterable[dict[str, Any]], *, mps_task_id: str | None, hostname: str | None
) -> OperatorLineage:
    """
    Return the lineage of the transfer: one output dataset per saved image, and the task's facets.

    :param saved: the transfer's return value: ``{"path", "size", ...}`` per image.
    :param mps_task_id: the TaskId whose images were saved.
    :param hostname: the worker that wrote local files (``task_instance.hostname``).
    """
    outputs = [storage_dataset(str(item["path"]), hostname=hostname, size=item.get("size")) for item in saved]
    facet = MpsAigcImageRunFacet(taskId=mps_task_id, imageCount=len(outputs))
    return OperatorLineage(outputs=outputs, run_facets=_run_facets(mps_task_id, {AIGC_IMAGE_FACET: facet}))


def storage_dataset(url: str, *, hostname: str | None, size: int | None = None) -> OutputDataset:
    """
    Return the output dataset of an object written at ``url`` (an ``ObjectStoragePath`` URL).

    Object stores are named as ``ObjectStoragePath`` (and common-io's file transfer) name them:
    ``namespace`` (``s3://bucket``) and ``key``.  Local files follow the naming conventions:
    ``file://{host}`` and the absolute path.

    :param url: where the object was written.
    :param hostname: the host of a local file; this machine's name when ``None``.
    :param size: the bytes written, reported in the ``outputStatistics`` facet.
    """
    path = ObjectStoragePath(url)
    if path.protocol in _LOCAL_PROTOCOLS:
        namespace = f"file://{hostname or socket.getfqdn()}"
        name = "/" + path.path.lstrip("/")
    else:
        namespace = path.namespace
        name = path.key.lstrip("/")
    facets: dict[str, OutputDatasetFacet] = {}
    if size is not None:
        facets["outputStatistics"] = OutputStatisticsOutputDatasetFacet(size=size, fileCount=1)
    return OutputDataset(namespace=namespace, name=name, outputFacets=facets)


def pushed_xcom(task_instance: Any, key: str) -> Any:
    """
    Return the XCom ``key`` that ``task_instance`` pushed in this try.

    :param task_instance: the finished task instance.
    :param key: the XCom key.
    """
    return task_instance.xcom_pull(
        task_ids=task_instance.task_id, key=key, map_indexes=task_instance.map_index
    )


def _run_facets(mps_task_id: str | None, facets: dict[str, RunFacet]) -> dict[str, RunFacet]:
    if mps_task_id:
        return {
            "externalQuery": ExternalQueryRunFacet(externalQueryId=mps_task_id, source=MPS_SOURCE),
            **facets,
        }
    return facets


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
