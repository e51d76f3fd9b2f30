"""
The check every ``execute_complete`` runs on a trigger event: never assume an event is a success.

:func:`validate_trigger_event` checks an event of
:class:`~airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger`,
:func:`validate_batch_trigger_event` one of
:class:`~airflow_provider_mps.triggers.mps.MpsAigcImageBatchTrigger`.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.core.status import EVENT_STATUSES, TriggerEventStatus, is_done, is_final
from airflow_provider_mps.exceptions import MpsError, MpsTaskFailedError, MpsTaskTimeoutError


def validate_trigger_event(event: dict[str, Any] | None, *, mps_task_id: str | None = None) -> dict[str, Any]:
    """
    Check an event of :class:`MpsAigcImageTaskTrigger` and return the finished task's result.

    Never assumes success: only a well-formed ``success`` event for the expected task passes.

    :param event: the event payload handed to ``execute_complete``.
    :param mps_task_id: the TaskId the caller waited for; checked against the event's when given.
    :return: the describe dict of the ``DONE`` task (``TaskId``, ``Status``, ``ImageUrls``, ...).
    :raises MpsTaskFailedError: the task ended in ``FAIL``.
    :raises MpsTaskTimeoutError: the deadline passed first.
    :raises MpsError: an error event, or an event that is missing, malformed or for another task.
    """
    if not isinstance(event, dict):
        raise MpsError(f"The trigger event must be a dict from MpsAigcImageTaskTrigger, got {event!r}.")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise MpsError(
            f"The trigger event status {status!r} is not one of {sorted(EVENT_STATUSES)}; event: {event!r}."
        )
    event_task_id = event.get("mps_task_id")
    if not isinstance(event_task_id, str) or not event_task_id:
        raise MpsError(f"The trigger event carries no MPS TaskId; event: {event!r}.")
    if mps_task_id is not None and event_task_id != mps_task_id:
        raise MpsError(
            f"The trigger event is for MPS task {event_task_id!r}, but the task waited for {mps_task_id!r}."
        )
    result = event.get("result")
    message = event.get("message")
    if status == TriggerEventStatus.FAILED.value:
        request_id = result.get("RequestId") if isinstance(result, dict) else None
        raise MpsTaskFailedError(event_task_id, message, request_id)
    if status == TriggerEventStatus.TIMEOUT.value:
        raise MpsTaskTimeoutError(message or f"Waiting for MPS task {event_task_id} timed out.")
    if status == TriggerEventStatus.ERROR.value:
        raise MpsError(message or f"Waiting for MPS task {event_task_id} failed with no message.")
    if not isinstance(result, dict) or not isinstance(result.get("ImageUrls"), list):
        raise MpsError(
            f"The success event for MPS task {event_task_id} has no ImageUrls list; event: {event!r}."
        )
    if not is_done(result.get("Status")):
        raise MpsError(
            f"The success event for MPS task {event_task_id} reports status "
            f"{result.get('Status')!r}, not DONE."
        )
    return result


def validate_batch_trigger_event(
    event: dict[str, Any] | None, *, mps_task_ids: list[str] | None = None
) -> dict[str, Any]:
    """
    Check an event of :class:`MpsAigcImageBatchTrigger` and return what it says of each task.

    :param event: the event payload handed to ``execute_complete``.
    :param mps_task_ids: the TaskIds the caller waited for, in order; checked against the event's.
    :return: ``{"status": "success" | "timeout", "results": {TaskId: describe dict or None},
        "message"}``; after ``success`` every result is ``DONE``, ``FAIL`` or ``NOT_FOUND``.
    :raises MpsError: an ``error`` event, or an event that is missing, malformed or for other tasks.
    """
    if not isinstance(event, dict):
        raise MpsError(f"The trigger event must be a dict from MpsAigcImageBatchTrigger, got {event!r:.200}.")
    status = event.get("status")
    if status not in EVENT_STATUSES - {TriggerEventStatus.FAILED.value}:
        raise MpsError(
            f"The batch trigger event status {status!r} is not one of error, success, timeout; "
            f"event: {event!r:.300}."
        )
    task_ids, results = event.get("mps_task_ids"), event.get("results")
    if (
        not isinstance(task_ids, list)
        or not isinstance(results, list)
        or len(task_ids) != len(results)
        or not all(isinstance(task_id, str) and task_id for task_id in task_ids)
    ):
        raise MpsError(
            f"The batch trigger event must carry mps_task_ids and one result per task; event: {event!r:.300}."
        )
    if mps_task_ids is not None and task_ids != list(mps_task_ids):
        raise MpsError(
            f"The batch trigger event is for {len(task_ids)} MPS task(s) that are not the "
            f"{len(mps_task_ids)} task(s) waited for."
        )
    message = str(event.get("message") or "")
    if status == TriggerEventStatus.ERROR.value:
        raise MpsError(message or "Waiting for the MPS tasks failed with no message.")
    by_id: dict[str, Any] = {}
    for task_id, result in zip(task_ids, results, strict=True):
        final = isinstance(result, dict) and is_final(result.get("Status"))
        if status == TriggerEventStatus.SUCCESS.value and not final:
            raise MpsError(
                f"The success event reports MPS task {task_id} as {result!r:.200}, "
                "not DONE, FAIL or NOT_FOUND."
            )
        if result is not None and not isinstance(result, dict):
            raise MpsError(
                f"The batch trigger event's result for MPS task {task_id} is not a dict: {result!r:.200}."
            )
        by_id[task_id] = result
    return {"status": status, "results": by_id, "message": message}
