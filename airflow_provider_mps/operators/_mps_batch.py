"""
Items, failures and per-try state of the batch operator.

The operator is :class:`~airflow_provider_mps.operators.mps_batch.MpsCreateAigcImageBatchOperator`.

* :func:`prepare_batch_requests` turns the rendered ``requests`` (prompts or request dicts) and
  ``shared_fields`` into validated hook keyword arguments, refusing the whole batch before anything
  is sent when any item is invalid;
* :func:`item_failure` is the one shape of a per-item failure (the ``failures`` XCom);
* :class:`BatchRun` is what one try knows of each item, and :func:`record_wait_results` what waiting
  for the items adds to it.

The ledger in the ``task_state_store`` and the submission are in
:mod:`~airflow_provider_mps.operators._mps_batch_submit`.  Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mps.core.api import CREATE_ACTION
from airflow_provider_mps.core.errors import REFUSED_CODES, Handling, classify, has_code
from airflow_provider_mps.core.fields import check_count
from airflow_provider_mps.core.status import is_done, is_final
from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsTaskTimeoutError
from airflow_provider_mps.validation import (
    AIGC_IMAGE_REQUEST_FIELDS,
    build_aigc_image_request,
    check_literal_fields,
    is_literal,
)

log = logging.getLogger(__name__)

#: Consecutive service-side or network failures after which the rest of the batch is not sent.
MAX_CONSECUTIVE_FAILURES = 10
#: ``code`` of an item that was never sent because the batch stopped early.
NOT_SUBMITTED = "NotSubmitted"
#: ``code`` of an item still unfinished when the wait timed out.
TIMED_OUT = "Timeout"

_SNAKE_BY_API_NAME = {api: snake for snake, api in AIGC_IMAGE_REQUEST_FIELDS.items()}
_MAX_LOGGED_INVALID = 50


# -- the items --------------------------------------------------------------------------------


def _batch_items(requests: object) -> list[Any]:
    """Return the rendered ``requests`` as a list: a list, tuple, XCom sequence or JSON list text."""
    rule = "must be a list of prompts or of request dicts (or a JSON string holding such a list)"
    if isinstance(requests, str):
        text = requests.strip()
        if not text.startswith("["):
            raise MpsInvalidParameterError("requests", f"{rule}; got text that is not a JSON list.", requests)
        try:
            requests = json.loads(text)
        except ValueError:
            raise MpsInvalidParameterError(
                "requests", f"{rule}; got text that is not valid JSON.", requests
            ) from None
    if requests is None or isinstance(requests, (Mapping, bytes)):
        raise MpsInvalidParameterError("requests", f"{rule}, got {type(requests).__name__}.", requests)
    try:
        return list(requests)  # type: ignore[call-overload]
    except TypeError:
        raise MpsInvalidParameterError(
            "requests", f"{rule}, got {type(requests).__name__}.", requests
        ) from None


def _shared_fields(shared_fields: object) -> dict[str, Any]:
    if shared_fields is None or (isinstance(shared_fields, str) and not shared_fields.strip()):
        return {}
    if isinstance(shared_fields, str):
        try:
            shared_fields = json.loads(shared_fields)
        except ValueError:
            shared_fields = None
    if not isinstance(shared_fields, Mapping):
        raise MpsInvalidParameterError(
            "shared_fields", "must be a dict of request fields (or a JSON string of one).", shared_fields
        )
    return _canonical_keys(shared_fields)


def _canonical_keys(fields: Mapping[Any, Any]) -> dict[Any, Any]:
    """Spell known fields the hook's way (``Prompt`` -> ``prompt``) so item values override shared ones."""
    return {_SNAKE_BY_API_NAME.get(key, key) if isinstance(key, str) else key: v for key, v in fields.items()}


def _item_fields(index: int, item: object, shared: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, str):
        return {**shared, "prompt": item}
    if isinstance(item, Mapping):
        return {**shared, **_canonical_keys(item)}
    raise MpsInvalidParameterError(
        f"requests[{index}]",
        f"must be a prompt string or a dict of request fields, got {type(item).__name__}.",
        item,
    )


def prepare_batch_requests(
    requests: object, shared_fields: object = None, *, strict: bool = False
) -> list[dict[str, Any]]:
    """
    Validate every item and return the hook keyword arguments of each, in input order.

    An item is a prompt string or a dict of request fields (snake_case or the service's names);
    ``shared_fields`` apply to every item that does not set the field itself.

    :param requests: the rendered ``requests`` of the operator.
    :param shared_fields: the rendered ``shared_fields`` of the operator.
    :param strict: refuse values outside today's documented enumerations.
    :raises MpsInvalidParameterError: naming the first invalid item when any item is invalid (each
        invalid item is logged); nothing is sent then.
    """
    items = _batch_items(requests)
    shared = _shared_fields(shared_fields)
    prepared: list[dict[str, Any]] = []
    errors: list[MpsInvalidParameterError] = []
    for index, item in enumerate(items):
        try:
            fields = _item_fields(index, item, shared)
            prepared.append(build_aigc_image_request(fields, where=f"requests[{index}].", strict=strict))
        except MpsInvalidParameterError as error:
            errors.append(error)
    if errors:
        for invalid in errors[:_MAX_LOGGED_INVALID]:
            log.error("%s", invalid)
        if len(errors) > _MAX_LOGGED_INVALID:
            log.error("... and %s more invalid requests.", len(errors) - _MAX_LOGGED_INVALID)
        first = errors[0]
        raise MpsInvalidParameterError(
            first.field,
            f"{first.rule} {len(errors)} of {len(items)} requests are invalid (each is logged); "
            "nothing was sent.",
            first.value,
        )
    return prepared


def validate_literal_batch(requests: object, shared_fields: object, *, strict: bool = False) -> None:
    """
    Check, at DAG parse time, the items and shared fields that are already final.

    A templated or ``XComArg`` value is left for run time, item by item.

    :param strict: refuse values outside today's documented enumerations.

    :raises MpsInvalidParameterError: naming the first literal item or field that breaks a rule.
    """
    if shared_fields is not None and not isinstance(shared_fields, Mapping) and is_literal(shared_fields):
        _shared_fields(shared_fields)
    if not isinstance(requests, (list, tuple)):
        return
    shared = _canonical_keys(shared_fields) if isinstance(shared_fields, Mapping) else {}
    for index, item in enumerate(requests):
        if isinstance(item, (str, Mapping)):
            check_literal_fields(
                _item_fields(index, item, shared), where=f"requests[{index}].", strict=strict
            )
        elif is_literal(item):
            _item_fields(index, item, shared)


# -- failures ---------------------------------------------------------------------------------


def check_max_failed_items(value: object) -> None:
    """
    Refuse a ``max_failed_items`` that is not a whole number of at least 0, or ``None``.

    :param value: the batch operator's argument.
    :raises MpsInvalidParameterError: naming ``max_failed_items``.
    """
    check_count("max_failed_items", value, minimum=0, none="no limit")


def item_failure(
    index: int,
    *,
    stage: str,
    code: str,
    message: str | None,
    request_id: str | None = None,
    mps_task_id: str | None = None,
    possibly_created: bool = False,
) -> dict[str, Any]:
    """
    Return the record of one failed item, as pushed in the ``failures`` XCom.

    :param index: the item's position in ``requests``.
    :param stage: ``"create"`` (no usable task was created) or ``"wait"`` (the task did not finish DONE).
    :param code: the service's error code, ``FAIL``, ``Timeout`` or ``NotSubmitted``.
    :param message: what went wrong, verbatim from the service when it said.
    :param request_id: the RequestId of the call that failed, to quote in a support case.
    :param mps_task_id: the MPS TaskId, when a task exists.
    :param possibly_created: the create may have created a task whose TaskId is lost; it is never resent.
    """
    return {
        "index": index,
        "stage": stage,
        "code": code,
        "message": message,
        "request_id": request_id,
        "mps_task_id": mps_task_id,
        "possibly_created": possibly_created,
    }


def create_failure(index: int, error: MpsError, *, possibly_created: bool) -> dict[str, Any]:
    """The failure record of a create that raised ``error``."""
    return item_failure(
        index,
        stage="create",
        code=str(getattr(error, "code", type(error).__name__)),
        message=str(getattr(error, "message", error)),
        request_id=getattr(error, "request_id", None),
        possibly_created=possibly_created,
    )


def is_batch_fatal(error: MpsError) -> bool:
    """Whether ``error`` will fail every other item too (bad credentials, no permission, ...)."""
    return classify(error, CREATE_ACTION) is Handling.DENIED


# -- one try's state --------------------------------------------------------------------------


@dataclass
class BatchRun:
    """
    What one try knows of each item: its TaskId and create RequestId, or its failure.

    :param task_ids: the TaskId per item, ``None`` until created (or re-attached to).
    :param request_ids: the create RequestId per item, ``None`` when there is none.
    :param failures: the failed items, by index (:func:`item_failure` records).
    :param stopped: why the submission stopped before sending every item, if it did.
    :param image_urls: the image URLs per item once waited for (``None`` when not waiting).
    :param event: the batch trigger's event, when the try waited on its worker.
    :param possibly_created: the record of each item whose create may have created a task whose
        TaskId is lost (time, RequestId, prompt's start), by index.
    """

    task_ids: list[str | None]
    request_ids: list[str | None]
    failures: dict[int, dict[str, Any]] = field(default_factory=dict)
    stopped: str | None = None
    image_urls: list[list[str]] | None = None
    event: dict[str, Any] | None = None
    possibly_created: dict[int, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def empty(cls, count: int) -> BatchRun:
        """A try that has created nothing yet, for ``count`` items."""
        return cls(task_ids=[None] * count, request_ids=[None] * count)

    @classmethod
    def pushed(cls, ti: Any, keys: tuple[str, str, str]) -> BatchRun:
        """
        Read back the try this task instance pushed to its XComs before deferring.

        :param ti: the task instance.
        :param keys: the XCom keys of the TaskIds, of the create RequestIds and of the failures.
        :raises MpsError: when one of them is missing: the deferral cannot be resumed.
        """
        task_ids, request_ids, failures = (
            ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=ti.map_index) for key in keys
        )
        if not all(isinstance(pushed, list) for pushed in (task_ids, request_ids, failures)):
            raise MpsError(
                "The batch's TaskIds, RequestIds and failures pushed before deferring are missing from "
                "the XComs of this try; the deferral cannot be resumed."
            )
        known = {int(failure["index"]): failure for failure in failures}
        return cls(task_ids=list(task_ids), request_ids=list(request_ids), failures=known)

    def pending(self) -> list[str]:
        """The TaskIds still to wait for: created, and not failed."""
        return [
            task_id
            for index, task_id in enumerate(self.task_ids)
            if task_id is not None and index not in self.failures
        ]


def record_wait_results(run: BatchRun, outcome: dict[str, Any]) -> dict[int, str | None]:
    """
    Record in ``run`` each item's outcome of the wait: its image URLs, or its failure.

    :param run: this try's state of every item, updated in place (``image_urls`` and ``failures``).
    :param outcome: the validated batch trigger event (``results`` by TaskId, ``message``).
    :return: the status of each item whose task did not end ``DONE``, by index.
    """
    results = outcome["results"]
    run.image_urls = [[] for _ in run.task_ids]
    wait_failed: dict[int, str | None] = {}
    for index, task_id in enumerate(run.task_ids):
        if task_id is None or index in run.failures:
            continue
        result = results.get(task_id) or {}
        status = result.get("Status")
        if is_done(status):
            run.image_urls[index] = list(result.get("ImageUrls") or [])
            continue
        message: str | None
        if not is_final(status):
            code = TIMED_OUT
            message = f"Still {status or 'unknown'} when waiting ended: {outcome['message']}"
        else:
            code, message = str(result.get("Code") or status), result.get("Message")
        run.failures[index] = item_failure(
            index,
            stage="wait",
            code=code,
            message=message,
            request_id=result.get("RequestId"),
            mps_task_id=task_id,
        )
        wait_failed[index] = status
    return wait_failed


def too_many_failures_error(
    failures: dict[int, dict[str, Any]], count: int, max_failed_items: int | None
) -> Exception:
    """
    Return the error failing a batch with more than ``max_failed_items`` failed items.

    ``AirflowFailException`` (no retry) when the service refused every failed request's parameters,
    :class:`~airflow_provider_mps.exceptions.MpsTaskTimeoutError` when every failure is a timeout,
    :class:`~airflow_provider_mps.exceptions.MpsError` otherwise.

    :param failures: the failed items, by index.
    :param count: how many items the batch has.
    :param max_failed_items: the operator's limit.
    """
    from airflow.providers.common.compat.sdk import AirflowFailException

    ordered = [failures[index] for index in sorted(failures)]
    first = ordered[0]
    message = (
        f"{len(failures)} of {count} items failed, more than max_failed_items={max_failed_items}; "
        f"the first, requests[{first['index']}], failed with {first['code']}: {first['message']} "
        f"(RequestId: {first['request_id'] or 'none'}). Every failure is in the 'failures' XCom."
    )
    if all(failure["stage"] == "create" and has_code(failure["code"], REFUSED_CODES) for failure in ordered):
        return AirflowFailException(
            f"{message} The service refused these requests' parameters; the same requests cannot "
            "succeed on a retry, so the task fails without retrying."
        )
    if all(failure["code"] == TIMED_OUT for failure in ordered):
        return MpsTaskTimeoutError(message)
    return MpsError(message)


def raise_for_outcome(
    run: BatchRun, *, max_failed_items: int | None, resubmit_on_retry: bool, durable: bool, logger: Any
) -> None:
    """
    Raise the error a finished batch fails with, if any; otherwise warn of the failures allowed.

    :param run: this try's state of every item, its XComs pushed.
    :param max_failed_items: the operator's limit.
    :param resubmit_on_retry: whether a retry may send a possibly created item again.
    :param durable: the operator's ``durable``, for what a retry does.
    :param logger: the operator's logger.
    """
    from airflow_provider_mps.operators._mps_batch_resume import possibly_created_failure

    failures, count = run.failures, len(run.task_ids)
    no_retry_can_help = possibly_created_failure(run, count, max_failed_items)
    if no_retry_can_help is not None and not resubmit_on_retry:
        if run.stopped is not None:
            raise type(no_retry_can_help)(f"Not all items were sent: {run.stopped} {no_retry_can_help}")
        raise no_retry_can_help
    if run.stopped is not None:
        from airflow_provider_mps.operators._reattach import what_a_retry_does

        retry = what_a_retry_does(durable=durable)
        raise MpsError(
            f"Not all items were sent: {run.stopped} {len(failures)} of {count} items failed; every "
            f"failure is in the 'failures' XCom. {retry}"
        )
    if max_failed_items is not None and len(failures) > max_failed_items:
        raise too_many_failures_error(failures, count, max_failed_items)
    if failures:
        logger.warning(
            "%s of %s items failed (at most %s allowed); see the 'failures' XCom.",
            len(failures),
            count,
            max_failed_items,
        )
