"""
How :class:`~airflow_provider_mps.operators.mps.MpsCreateAigcImageTaskOperator` creates its task.

:func:`submit_task` is the body of the operator's ``submit_job``: it checks what earlier tries left,
reserves the spend, records the create before it leaves and its TaskId once it is created, and decides
once what a failed create means.  The operator's module imports it only when a task is created:
parsing a DAG file does not load it, nor the exceptions it handles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.core.api import CREATE_ACTION
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.operators import _possibly_created as possibly, _spend
from airflow_provider_mps.operators._try_record import try_record
from airflow_provider_mps.validation import to_api_params

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator


def submit_task(
    operator: MpsCreateAigcImageTaskOperator,
    context: Context,
    *,
    request: dict[str, Any],
    fingerprint: str,
    possibly_created_key: str,
) -> dict[str, Any]:
    """
    Create the MPS task of ``request``; return ``{"TaskId", "RequestId", "Fingerprint"}``.

    A create that may have created a task whose TaskId is lost fails the task without retries,
    unless ``resubmit_on_retry`` (:mod:`~airflow_provider_mps.operators._possibly_created`).

    :param operator: the single-task create operator, its templates rendered.
    :param context: the task context.
    :param request: the validated request (the hook's keyword arguments).
    :param fingerprint: the request's fingerprint, kept with its TaskId.
    :param possibly_created_key: the store key of the creates whose outcome is unknown.
    """
    store, key = try_record(context, durable=operator.durable), possibly_created_key
    policy = {
        "store": store,
        "key": key,
        "resubmit_on_retry": operator.resubmit_on_retry,
        "log": operator.log,
    }
    possibly.check_earlier_creates(fingerprint=fingerprint, **policy)
    # Reserved before sending, and only here: a retry that re-attaches never reaches this function.
    _spend.reserve(
        operator.hook, [request], what=_spend.what_creates("the create of task", operator.task_id, context)
    )
    # Written ahead: a worker killed before the TaskId is stored leaves this record behind.
    sending = possibly.record_sending(store, key, request, fingerprint)
    response = _send(operator, request, fingerprint, sending, policy)
    job: dict[str, Any] = {
        "TaskId": response["TaskId"],
        "RequestId": response["RequestId"],
        "Fingerprint": fingerprint,
    }
    if store is not None:
        # At once: ResumableJobMixin stores it too, but only after this function returned.
        store.set(operator.external_id_key, job)
    possibly.take_back_sending(store, key, sending)
    _spend.count_sent(operator.hook, request)
    return job


def _send(
    operator: MpsCreateAigcImageTaskOperator,
    request: dict[str, Any],
    fingerprint: str,
    sending: dict[str, Any] | None,
    policy: dict[str, Any],
) -> dict[str, str]:
    """
    Send the create; on a failure, take back its record and decide once what the failure means.

    :param operator: the single-task create operator.
    :param request: the validated request.
    :param fingerprint: the request's fingerprint.
    :param sending: the record written before sending, taken back when the create certainly failed.
    :param policy: ``store``, ``key``, ``resubmit_on_retry`` and ``log`` of the possibly-created checks.
    :return: the service's ``{"TaskId", "RequestId"}``.
    """
    store, key = policy["store"], policy["key"]
    # The hook logs the TaskId and RequestId; what a failure means is decided here, once.
    try:
        return operator.hook.submit_request(to_api_params(request))
    except MpsError as error:
        possibly.take_back_sending(store, key, sending)
        if classify(error, CREATE_ACTION) is Handling.REFUSED:
            raise AirflowFailException(
                f"{error} The service refused the request's parameters; the same request cannot "
                "succeed on a retry, so the task fails without retrying."
            ) from error
        possibly.check_failed_create(
            error, request=request, fingerprint=fingerprint, conn_id=operator.mps_conn_id, **policy
        )
        raise
    except Exception:
        # Not the SDK's: the hook failed before sending (no such connection, a bad one), which
        # stays retryable.  A kill or a task timeout (BaseException) leaves the record.
        possibly.take_back_sending(store, key, sending)
        raise
