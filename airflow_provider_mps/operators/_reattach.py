"""
Re-attach on retry: what each Airflow line lets a retried try do with an earlier try's MPS tasks.

Airflow 3.3 gave every task a ``task_state_store`` that outlives a try: the operators keep the
TaskIds they create there (through ``ResumableJobMixin``), and a retry re-attaches to them.  Before
3.3 nothing an operator writes survives into its next try (XComs are cleared), so a retry cannot
know which tasks the earlier try created and would pay for them again.  There the operators refuse
to run a retry unless the user opted in with ``resubmit_on_retry=True``.  This module is the one
place that decides it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow.providers.common.compat.sdk import Context
    from pydantic import JsonValue

#: Seconds Airflow waits beyond the trigger's own deadline before failing a deferral itself (the
#: trigger's ``timeout`` event, with its message, comes first; this catches a trigger that never runs).
DEFER_TIMEOUT_GRACE_SECONDS = 60.0

#: Whether a retried try can find the MPS tasks an earlier try created (``task_state_store``, 3.3+).
RETRY_CAN_REATTACH: bool = AIRFLOW_V_3_3_PLUS


def check_retry_may_resubmit(
    context: Context,
    *,
    resubmit_on_retry: bool,
    retries: int | None,
    what: str,
    log: Any,
) -> None:
    """
    Refuse, before Airflow 3.3, a retry that would create again what an earlier try may have created.

    On Airflow 3.3+ this does nothing: the retry re-attaches through the ``task_state_store``.  On an
    older Airflow, the first try only logs that its retries will be refused (when it has any), and a
    later try (``try_number`` above 1, which a clear of the task instance also gives) fails at once,
    before any request is sent, unless ``resubmit_on_retry`` is set.

    :param context: the task context.
    :param resubmit_on_retry: the operator's opt-in to create everything anew on a retry.
    :param retries: the operator's ``retries``, to say on the first try whether the note applies.
    :param what: what an earlier try may have created, e.g. ``"its MPS AIGC image task"``.
    :param log: the operator's logger.
    :raises AirflowFailException: on a refused retry, naming the reason, the Airflow version and the
        opt-in; Airflow does not retry it.
    """
    if RETRY_CAN_REATTACH:
        return
    from airflow import __version__ as airflow_version

    try_number = context["ti"].try_number
    if try_number <= 1:
        if retries and not resubmit_on_retry:
            log.info(
                "Apache Airflow %s keeps no task_state_store across tries (Airflow 3.3+ does): a retry of "
                "this task cannot re-attach to %s and fails instead of paying again, unless "
                "resubmit_on_retry=True.",
                airflow_version,
                what,
            )
        return
    if resubmit_on_retry:
        log.warning(
            "Try %s: an earlier try may already have created %s; creating anew, as resubmit_on_retry=True "
            "allows (Apache Airflow %s cannot re-attach).",
            try_number,
            what,
            airflow_version,
        )
        return
    raise AirflowFailException(
        f"This is try {try_number} of the task, and an earlier try may already have created {what}. "
        f"Apache Airflow {airflow_version} keeps no task_state_store across tries (it arrived in Airflow "
        "3.3), so this try cannot re-attach to what the earlier try created and would pay for it again; the "
        "task fails without sending anything. Set resubmit_on_retry=True on the operator to create anew on "
        "a retry (or after a clear), or upgrade to Airflow 3.3+ to re-attach."
    )


def what_a_retry_does(*, durable: bool, resubmit_on_retry: bool) -> str:
    """
    Say what a retry does with the MPS tasks this try created: the last sentence of a batch's error.

    :param durable: the operator's ``durable`` (always ``False`` before Airflow 3.3).
    :param resubmit_on_retry: the operator's opt-in to create everything anew on a retry.
    """
    if RETRY_CAN_REATTACH:
        if durable:
            return "A retry re-attaches to the tasks created and sends the rest."
        return "With durable=False, a retry creates every item again."
    from airflow import __version__ as airflow_version

    if resubmit_on_retry:
        return (
            f"Apache Airflow {airflow_version} cannot re-attach on a retry; with resubmit_on_retry=True a "
            "retry creates every item again."
        )
    return (
        f"Apache Airflow {airflow_version} cannot re-attach on a retry; a retry fails without sending "
        "anything unless resubmit_on_retry=True."
    )


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
