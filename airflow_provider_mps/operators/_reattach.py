"""
Re-attach on retry: how a retried try recognises an earlier try's MPS tasks, on every Airflow line.

The operators keep the TaskIds they create, with a :func:`fingerprint` of the rendered request, where
a retry finds them (:mod:`~airflow_provider_mps.operators._try_record`: the ``task_state_store`` on
Airflow 3.3+, Airflow Variables before).  A retry re-attaches to a stored task only when it was made
for the same request (:func:`stored_for_another_request`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pydantic import JsonValue

#: Seconds Airflow waits beyond the trigger's own deadline before failing a deferral itself (the
#: trigger's ``timeout`` event, with its message, comes first; this catches a trigger that never runs).
DEFER_TIMEOUT_GRACE_SECONDS = 60.0


def what_a_retry_does(*, durable: bool) -> str:
    """
    Say what a retry does with the MPS tasks this try created: the last sentence of a batch's error.

    :param durable: the operator's ``durable``.
    """
    from airflow_provider_mps.operators._try_record import STORE_KIND

    if durable:
        return f"A retry re-attaches to the tasks created (kept in {STORE_KIND}) and sends the rest."
    return "With durable=False, a retry creates every item again."


def defer_timeout(timeout: float | None) -> datetime.timedelta | None:
    """The ``timeout`` given to ``defer()``: the operator's ``timeout`` plus a grace period, or none."""
    if timeout is None:
        return None
    return datetime.timedelta(seconds=timeout + DEFER_TIMEOUT_GRACE_SECONDS)


def fingerprint(request: Mapping[str, Any]) -> str:
    """A short digest of one rendered request: a retry re-attaches only to a task made for the same one."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stored_job(external_id: JsonValue) -> dict[str, Any]:
    """
    Read a stored job, ``{"TaskId", "RequestId", "Fingerprint"}``, as the create operator writes it.

    :raises TypeError: when ``external_id`` is not such a record.
    """
    if isinstance(external_id, dict) and isinstance(external_id.get("TaskId"), str):
        return {key: external_id.get(key) for key in ("TaskId", "RequestId", "Fingerprint")}
    raise TypeError(f"The stored MPS job {external_id!r} holds no TaskId.")


def stored_for_another_request(job: dict[str, Any], fingerprint: str, log: Any) -> bool:
    """
    Whether a stored job was created for another rendered request; if so, log that a new one is made.

    :param job: the :func:`stored_job`.
    :param fingerprint: the fingerprint of this try's rendered request.
    :param log: the operator's logger.
    """
    if job.get("Fingerprint") == fingerprint:
        return False
    log.warning(
        "MPS task %s from an earlier try was created for another request (the rendered fields changed "
        "since); creating a new task for this request instead of returning that one.",
        job["TaskId"],
    )
    return True
