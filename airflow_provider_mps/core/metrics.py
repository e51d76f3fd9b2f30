"""
The provider's spend metrics, emitted through Airflow's own metrics (StatsD, Datadog or OpenTelemetry).

Each counter goes through ``Stats`` as common-compat resolves it on every Airflow line, the way
the official providers emit theirs: ``airflow.sdk.observability.stats`` where the Task SDK has it,
``airflow.stats`` before.  Airflow adds its ``[metrics] statsd_prefix`` (``airflow.``), sends them
where ``[metrics]`` says, and sends nothing when metrics are off.

=====================================================  ===============================================
Counter                                                What it counts
=====================================================  ===============================================
``tencentcloud_mps.images_requested``                  images asked for by the creates sent
``tencentcloud_mps.creates_refused_by_budget``         creates not sent because the image budget
                                                       could not cover them
``tencentcloud_mps.possible_duplicates``               creates that may have created a paid task whose
                                                       TaskId was lost
=====================================================  ===============================================

Every counter is tagged ``conn_id`` and ``model``.  Tags reach StatsD with
``[metrics] statsd_influxdb_enabled`` (``name,conn_id=...,model=...``), Datadog and OpenTelemetry
as their own tags; plain StatsD gets the totals.  A metric that cannot be sent never fails the task
that sent a paid request: it is logged and dropped.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

#: The first part of every metric name of the provider (after Airflow's ``statsd_prefix``).
METRIC_NAMESPACE = "tencentcloud_mps"
#: Images asked for by the creates sent (``output_image_count``, summed over a batch).
IMAGES_REQUESTED = f"{METRIC_NAMESPACE}.images_requested"
#: Creates refused by the image budget: nothing was sent.
CREATES_REFUSED_BY_BUDGET = f"{METRIC_NAMESPACE}.creates_refused_by_budget"
#: Creates whose outcome is unknown: each may have created a paid task whose TaskId was lost.
POSSIBLE_DUPLICATES = f"{METRIC_NAMESPACE}.possible_duplicates"
#: The ``model`` tag of a create that names no model (the service picks its default).
DEFAULT_MODEL_TAG = "default"


def tags(*, conn_id: str, model: str | None) -> dict[str, str]:
    """
    Return the tags of every spend metric.

    :param conn_id: the Airflow connection the create used.
    :param model: the request's ``model_name``, or ``None`` for the service's default.
    """
    return {"conn_id": conn_id, "model": model or DEFAULT_MODEL_TAG}


def count_images_requested(count: int, *, conn_id: str, model: str | None) -> None:
    """
    Count the images one sent create asks for (a batch's whole count, or one item's).

    :param count: the images asked for.
    :param conn_id: the Airflow connection the create used.
    :param model: the request's ``model_name``, or ``None``.
    """
    _incr(IMAGES_REQUESTED, count, conn_id=conn_id, model=model)


def count_refused_by_budget(*, conn_id: str, model: str | None, creates: int = 1) -> None:
    """
    Count creates the image budget refused (nothing was sent).

    :param conn_id: the Airflow connection the creates would have used.
    :param model: the request's ``model_name``, or ``None``.
    :param creates: the creates refused at once: 1 for a single task, the items for a batch.
    """
    _incr(CREATES_REFUSED_BY_BUDGET, creates, conn_id=conn_id, model=model)


def count_possible_duplicate(*, conn_id: str, model: str | None) -> None:
    """
    Count one create whose outcome is unknown: it may have created a paid task whose TaskId was lost.

    :param conn_id: the Airflow connection the create used.
    :param model: the request's ``model_name``, or ``None``.
    """
    _incr(POSSIBLE_DUPLICATES, 1, conn_id=conn_id, model=model)


def _incr(stat: str, count: int, *, conn_id: str, model: str | None) -> None:
    if count < 1:
        return
    try:
        from airflow.providers.common.compat.sdk import Stats

        Stats.incr(stat, count, tags=tags(conn_id=conn_id, model=model))
    except Exception as error:  # a metric must never fail the task that sent a paid request
        log.warning("Could not emit the metric %s (%s: %s)", stat, type(error).__name__, error)
