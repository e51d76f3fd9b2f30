"""
The spend guard where the creates meet: the single operator's create and the batch's.

Both operators call the same three steps, in this order:

1. :func:`check_cap`, after templates are rendered and before anything else: ``max_images``;
2. :func:`reserve`, right before a create (or a whole batch) is sent, never on a re-attach: the
   account's image budget, all of the images at once;
3. :func:`count_sent`, for each create the service accepted: the ``images_requested`` metric.

The rules themselves live in :mod:`airflow_provider_mps.core.budget` and the metrics in
:mod:`airflow_provider_mps.core.metrics`; this module only knows where an operator's request keeps
its count and model.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.core import budget, metrics

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mps.hooks.mps import MpsHook

#: The field whose count is capped, as errors name it.
COUNT_FIELD = "output_image_count"
#: What the service makes when a request does not set ``output_image_count``.
DEFAULT_IMAGE_COUNT = 1


def images_of(request: dict[str, Any]) -> int:
    """
    Return the images one validated request asks for.

    :param request: a request as the validation returns it (snake_case fields).
    """
    count = request.get(COUNT_FIELD)
    return DEFAULT_IMAGE_COUNT if count is None else int(count)


def check_cap(requests: Sequence[dict[str, Any]], max_images: int | None, *, batch: bool) -> int:
    """
    Refuse, without retries, requests asking for more images than ``max_images``; return their count.

    :param requests: the validated requests of one task (one for the single operator).
    :param max_images: the operator's cap, or ``None``.
    :param batch: whether they are a batch's items: the error then names the sum over them.
    :raises MpsInvalidParameterError: over the cap, naming the count, the cap and the field.
    """
    total = sum(images_of(request) for request in requests)
    field = f"{COUNT_FIELD} (the sum over {len(requests)} requests)" if batch else COUNT_FIELD
    budget.check_max_images(total, max_images, field)
    return total


def what_creates(what: str, task_id: str, context: Context) -> str:
    """
    Name the creates of this task instance for the budget's log and errors.

    :param what: what they are, e.g. ``the create of task``.
    :param task_id: the operator's ``task_id``.
    :param context: the task context (its task instance tells the map index).
    :return: e.g. ``the create of task 'make_shots' [map index 3]``.
    """
    map_index = getattr(context.get("ti"), "map_index", -1)
    mapped = f" [map index {map_index}]" if isinstance(map_index, int) and map_index >= 0 else ""
    return f"{what} '{task_id}'{mapped}"


def reserve(hook: MpsHook, requests: Sequence[dict[str, Any]], *, what: str) -> budget.Reservation | None:
    """
    Reserve every image of ``requests`` from the connection's image budget at once, before sending.

    A refusal sends nothing: it is counted in the ``creates_refused_by_budget`` metric, one per
    request, tagged by model, and raised.

    :param hook: the hook that will send the creates (its connection names the budget and the account).
    :param requests: the validated requests about to be sent.
    :param what: what asks for the images, for the log and the error.
    :return: the reservation, or ``None`` when no budget is set.
    :raises MpsBudgetExceededError: (retried) when the window cannot cover them now.
    :raises MpsInvalidParameterError: (not retried) when the budget is malformed, has no shared store,
        or could never cover them.
    """
    from airflow_provider_mps.utils.shared_quota import quota_storage_uri

    limit = budget.image_budget(conn_id=hook.mps_conn_id, extra=hook.settings.image_budget)
    if limit is None:
        return None
    count = sum(images_of(request) for request in requests)
    try:
        return budget.reserve_images(
            hook.rate_limit_key, count, budget=limit, storage_uri=quota_storage_uri(), what=what
        )
    except budget.MpsBudgetExceededError:
        for model, creates in Counter(request.get("model_name") for request in requests).items():
            metrics.count_refused_by_budget(conn_id=hook.mps_conn_id, model=model, creates=creates)
        raise


def count_sent(hook: MpsHook, request: dict[str, Any]) -> None:
    """
    Count the images of one create the service accepted (a TaskId came back).

    :param hook: the hook that sent it.
    :param request: its validated request.
    """
    metrics.count_images_requested(
        images_of(request), conn_id=hook.mps_conn_id, model=request.get("model_name")
    )
