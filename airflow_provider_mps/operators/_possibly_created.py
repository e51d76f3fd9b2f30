"""
One policy for creates whose outcome is unknown, shared by the single and the batch operator.

A ``CreateAigcImageTask`` that failed after the request may have reached the service (lost answer,
read timeout, garbled body, 5xx page, ``InternalError``) may have created a paid task whose TaskId
is lost.  Sending it again may pay twice.  The policy:

* **by default** the operator records the request (where its retries look, on every line:
  time, RequestId if any, the prompt's first characters), logs a WARNING naming it, and fails the
  task *without Airflow retries* (``AirflowFailException``), naming the request and the opt-in;
  a later try of the same request (after a clear) refuses to send it again;
* **with** ``resubmit_on_retry=True`` the failure stays retryable; the retry sends the request
  again and every possible duplicate is counted in the log.

A create refused for quota, or whose connection was never established, created nothing: it stays
retryable, as before.  Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.utils.prompt import prompt_excerpt

if TYPE_CHECKING:
    from airflow_provider_mps.exceptions import MpsError


#: The start of the WARNING logged for every create that may have paid for a task nobody knows.
POSSIBLE_DUPLICATE_WARNING = "Possible duplicate"

#: The last sentence of every error of this policy: how to opt in to paying twice.
OPT_IN = (
    "To let retries send it again, accepting that each possibly created task is paid for (every possible "
    "duplicate is counted in the log), set resubmit_on_retry=True on the operator."
)


#: The code recorded for a create that was being sent when its try ended (the worker was killed).
SENDING_CODE = "ClientError.TryEnded"
#: What such a record says happened.
SENDING_MESSAGE = "the try ended while this create was being sent, before its answer was recorded"


def possibly_created_entry(error: MpsError, request: dict[str, Any], fingerprint: str) -> dict[str, Any]:
    """
    Return the record of a create that may have created a task: what finds it in the MPS console.

    :param error: what the create failed with.
    :param request: the hook keyword arguments of the create (only the prompt's start is kept).
    :param fingerprint: the request's fingerprint, so only the same request is refused later.
    """
    return {
        "At": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "RequestId": getattr(error, "request_id", None),
        "Code": str(getattr(error, "code", type(error).__name__)),
        "Message": str(getattr(error, "message", error)),
        "Prompt": prompt_excerpt(request.get("prompt")),
        "Fingerprint": fingerprint,
    }


def describe_entry(entry: dict[str, Any]) -> str:
    """``sent around <time> UTC (RequestId ..., prompt '...')``: enough to find the task in the console."""
    at = f"around {entry['At']} UTC" if entry.get("At") else "at a time not recorded"
    return (
        f"sent {at} (RequestId {entry.get('RequestId') or 'none'}, "
        f"prompt {entry.get('Prompt') or '(not recorded)'})"
    )


def stored_entries(store: Any, key: str) -> list[dict[str, Any]]:
    """The possibly-created records kept under ``key`` in ``store`` (none without a store)."""
    if store is None:
        return []
    stored = store.get(key)
    return [entry for entry in stored if isinstance(entry, dict)] if isinstance(stored, list) else []


def record_entry(store: Any, key: str, entry: dict[str, Any]) -> int:
    """
    Append ``entry`` to the records under ``key``; return how many this request has now.

    Without a store (``durable=False``) nothing is kept and 1 is returned.
    """
    if store is None:
        return 1
    entries = [*stored_entries(store, key), entry]
    store.set(key, entries)
    return sum(earlier.get("Fingerprint") == entry["Fingerprint"] for earlier in entries)


def record_sending(store: Any, key: str, request: dict[str, Any], fingerprint: str) -> dict[str, Any] | None:
    """
    Before a create leaves: record it as possibly created until its outcome is known.

    A worker killed while the create is in flight, or before its TaskId is stored, leaves this
    record, so the next try refuses to send the request again (:func:`check_earlier_creates`)
    instead of paying twice.  :func:`take_back_sending` removes it once the outcome is known.
    Returns the record (``None`` without a store).

    :param store: the ``task_state_store`` (``None``: nothing is recorded).
    :param key: where the records are kept.
    :param request: the hook keyword arguments of the create (only the prompt's start is kept).
    :param fingerprint: the request's fingerprint.
    """
    if store is None:
        return None
    entry = {
        "At": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "RequestId": None,
        "Code": SENDING_CODE,
        "Message": SENDING_MESSAGE,
        "Prompt": prompt_excerpt(request.get("prompt")),
        "Fingerprint": fingerprint,
        "Sending": uuid.uuid4().hex[:12],
    }
    store.set(key, [*stored_entries(store, key), entry])
    return entry


def take_back_sending(store: Any, key: str, entry: dict[str, Any] | None) -> None:
    """Remove the :func:`record_sending` record ``entry``: its create's outcome is known."""
    if store is None or entry is None:
        return
    entries = stored_entries(store, key)
    kept = [earlier for earlier in entries if earlier.get("Sending") != entry["Sending"]]
    if len(kept) == len(entries):
        return
    if kept:
        store.set(key, kept)
    else:
        store.delete(key)


def log_possible_duplicate(
    log: Any, entry: dict[str, Any], count: int, *, conn_id: str, model: str | None, where: str = ""
) -> None:
    """
    Log the WARNING counting one more create that may have paid for a task whose TaskId is lost.

    Also counted in the ``possible_duplicates`` metric (:mod:`~airflow_provider_mps.core.metrics`).

    :param log: the operator's logger.
    :param entry: the record of that create.
    :param count: how many creates of this request may have created a task so far (this one included).
    :param conn_id: the connection the create used (a tag of the metric).
    :param model: the request's ``model_name`` (a tag of the metric).
    :param where: the item, for a batch (``"requests[3]: "``).
    """
    from airflow_provider_mps.core.metrics import count_possible_duplicate

    count_possible_duplicate(conn_id=conn_id, model=model)
    log.warning(
        "%s%s %s of this request: a CreateAigcImageTask %s may have been paid for although its TaskId "
        "never came back.",
        where,
        POSSIBLE_DUPLICATE_WARNING,
        count,
        describe_entry(entry),
    )


def uncertain_create_failure(error: MpsError, entry: dict[str, Any], *, what: str) -> AirflowFailException:
    """
    The error failing a task, without Airflow retries, after a create whose outcome is unknown.

    :param error: what the create failed with.
    :param entry: the record of that create.
    :param what: what may have been created, e.g. ``"an MPS AIGC image task"``.
    """
    return AirflowFailException(
        f"{error} The CreateAigcImageTask {describe_entry(entry)} may have created {what} whose TaskId is "
        "lost, so the task fails without Airflow retries: a retry would send it again and may pay twice. "
        f"Look for that task in the MPS console before running again. {OPT_IN}"
    )


def refused_resend(entry: dict[str, Any], *, count: int) -> AirflowFailException:
    """
    The error refusing, on a later try, to send again a request whose earlier create may have succeeded.

    :param entry: the latest record of that request.
    :param count: how many earlier creates of it may have created a task.
    """
    return AirflowFailException(
        f"An earlier try's CreateAigcImageTask of this same request, {describe_entry(entry)}, may have "
        f"created an MPS task whose TaskId is lost ({count} such create(s) recorded in the "
        "task_state_store). Sending it again may pay twice, so this try fails without sending anything and "
        f"without Airflow retries; look for that task in the MPS console. {OPT_IN}"
    )


def check_earlier_creates(
    store: Any, key: str, fingerprint: str, *, resubmit_on_retry: bool, log: Any
) -> None:
    """
    Before a create: refuse to send again a request whose earlier create may have created a task.

    With ``resubmit_on_retry`` it is sent, after a WARNING counting the earlier creates.

    :param store: the ``task_state_store`` (``None``: nothing is known, nothing refused).
    :param key: where the records are kept.
    :param fingerprint: the request's fingerprint.
    :param resubmit_on_retry: the operator's opt-in.
    :param log: the operator's logger.
    :raises AirflowFailException: naming the latest such create and the opt-in.
    """
    earlier = [entry for entry in stored_entries(store, key) if entry.get("Fingerprint") == fingerprint]
    if not earlier:
        return
    if not resubmit_on_retry:
        raise refused_resend(earlier[-1], count=len(earlier))
    log.warning(
        "Sending this request again, as resubmit_on_retry=True allows, although %s earlier create(s) of it "
        "may have created a task (the latest %s).",
        len(earlier),
        describe_entry(earlier[-1]),
    )


def check_failed_create(
    error: MpsError,
    *,
    store: Any,
    key: str,
    request: dict[str, Any],
    fingerprint: str,
    resubmit_on_retry: bool,
    log: Any,
    conn_id: str,
) -> None:
    """
    After a failed create: apply the policy when it may have created a task; return otherwise.

    Records the request, logs the possible duplicate, and raises the no-retry failure unless
    ``resubmit_on_retry``; the caller re-raises ``error`` when this returns.

    :param error: what the create failed with.
    :param store: the ``task_state_store`` (``None``: nothing is recorded).
    :param key: where the records are kept.
    :param request: the hook keyword arguments of the create.
    :param fingerprint: the request's fingerprint.
    :param resubmit_on_retry: the operator's opt-in.
    :param log: the operator's logger.
    :param conn_id: the connection the create used (a tag of the ``possible_duplicates`` metric).
    :raises AirflowFailException: when the create may have created a task, without the opt-in.
    """
    from airflow_provider_mps.core.api import CREATE_ACTION
    from airflow_provider_mps.core.errors import classify

    if classify(error, CREATE_ACTION).created_nothing:
        return
    entry = possibly_created_entry(error, request, fingerprint)
    count = record_entry(store, key, entry)
    log_possible_duplicate(log, entry, count, conn_id=conn_id, model=request.get("model_name"))
    if not resubmit_on_retry:
        raise uncertain_create_failure(error, entry, what="an MPS AIGC image task") from error
