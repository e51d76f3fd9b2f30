"""
The batch operator: many MPS AIGC image tasks from one Airflow task, at the service quota.

Import it from :mod:`airflow_provider_mps.operators.mps` (next to the single-task operator); it is
defined here so that parsing a DAG file that only uses the single operator does not define it.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator, conf

from airflow_provider_mps import DEFAULT_CONN_ID, IMAGE_URLS_XCOM_KEY, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps._parsing import operator_setattr, set_xcomargs_dependencies
from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsTaskTimeoutError
from airflow_provider_mps.operators.mps import _NO_DEADLINE_SECONDS
from airflow_provider_mps.validation import check_positive_seconds as _check_seconds, check_rate_limit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mps.hooks.mps import MpsHook

#: XCom key of the batch operator's failed items.
BATCH_FAILURES_XCOM_KEY = "failures"

#: XCom key of the batch operator's create RequestId per item.
BATCH_REQUEST_IDS_XCOM_KEY = "request_ids"

#: What an item's status is when waiting ended before its task did (unknown: never described).
_UNFINISHED = ("WAIT", "RUN", "None")


class MpsCreateAigcImageTasksOperator(BaseOperator):
    """
    Create one MPS AIGC image task per item of ``requests`` from a single Airflow task, at the quota.

    ``requests`` is a list of prompts or of request dicts (the single operator's field names, or
    the service's), literal, templated or an ``XComArg`` (e.g. rows of a data set); ``shared_fields``
    apply to every item that does not set the field itself.  Every item is validated with the single
    operator's rules before anything is sent; one invalid item refuses the whole batch.

    Submission: creates go out from a small thread pool, each waiting for its slot at the
    process-wide rate limiter of the account (``rate_limit`` per second, the service's quota of 20
    by default), so the batch takes about ``len(requests) / rate_limit`` seconds.  A create refused
    for quota (``RequestLimitExceeded``) or whose connection was never made is retried: nothing was
    created.  A create that failed after it may have reached the service is never resent; it is
    reported as a failure with ``possibly_created`` set and a WARNING.  The batch stops sending at an
    error no other item can escape (bad credentials, no permission), and after
    :data:`~airflow_provider_mps.operators._mps_batch.MAX_CONSECUTIVE_FAILURES` service or network
    failures in a row; the items not sent are reported as ``NotSubmitted``.

    Re-attach: each created TaskId is written to the task's ``task_state_store`` as soon as it is
    known, so a retried try reuses the tasks of unchanged items (same position, same request)
    instead of paying for them again, creates the items that failed or were never sent, and never
    resends a possibly created one.  The record is dropped when the operator succeeds.

    Waiting: with ``wait_for_completion=True`` the operator waits until every task is ``DONE`` or
    ``FAIL`` (``deferrable=True``: in the triggerer, with one
    :class:`~airflow_provider_mps.triggers.mps.MpsAigcImageTasksTrigger` for the whole batch), polling
    within the describe quota.

    XComs: ``return_value`` is the list of TaskIds in input order, ``None`` for each failed item;
    ``failures`` the failed items (``index``, ``stage``, ``code``, ``message``, ``request_id``,
    ``mps_task_id``, ``possibly_created``); ``request_ids`` the create RequestId per item; and, when
    waiting, ``image_urls`` the list of image URLs per item (empty for failed items).

    Failing: when more than ``max_failed_items`` items failed, the task fails, after every other
    item was sent (and waited for, when waiting) and every XCom above was pushed.  With the default
    of 0, any failed item fails the task and its retry re-attaches to the rest.

    :param requests: the items: prompts, or dicts of request fields.
    :param shared_fields: request fields applied to every item that does not set them, e.g.
        ``{"model_name": "GEM", "extra_parameters": {"AspectRatio": "1:1"}}``.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param region: the region overriding the connection's, if any.
    :param wait_for_completion: wait until every task is ``DONE`` or ``FAIL``.
    :param deferrable: wait in the triggerer (only with ``wait_for_completion=True``).
    :param poll_interval: seconds between two polls of the unfinished tasks while waiting.
    :param timeout: seconds to wait for the tasks after submitting them; ``None`` waits forever.
    :param rate_limit: the most ``CreateAigcImageTask`` (and ``DescribeAigcImageTask``) calls per
        second from this process for the account; the service allows 20.
    :param max_failed_items: how many items may fail before the task fails; ``None`` for no limit.
    :param durable: keep the created TaskIds in the ``task_state_store`` so a retry re-attaches.
    """

    template_fields: Sequence[str] = ("requests", "shared_fields", "region")
    template_fields_renderers = {"requests": "json", "shared_fields": "json"}
    ui_color = "#e8f3ff"
    __setattr__ = operator_setattr

    requests: Any
    shared_fields: Any
    mps_conn_id: str
    region: str | None
    wait_for_completion: bool
    deferrable: bool
    poll_interval: float
    timeout: float | None
    rate_limit: float
    max_failed_items: int | None
    durable: bool

    def __init__(
        self,
        *,
        requests: list[Any] | str,
        shared_fields: dict[str, Any] | str | None = None,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        rate_limit: float = SERVICE_QUOTA_PER_SECOND,
        max_failed_items: int | None = 0,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_mps.operators._mps_batch import validate_literal_batch

        validate_literal_batch(requests, shared_fields)
        _check_seconds("poll_interval", poll_interval)
        check_rate_limit(rate_limit)
        if timeout is not None:
            _check_seconds("timeout", timeout)
        if max_failed_items is not None and (
            isinstance(max_failed_items, bool)
            or not isinstance(max_failed_items, int)
            or max_failed_items < 0
        ):
            raise MpsInvalidParameterError(
                "max_failed_items",
                "must be a whole number, 0 or more, or None for no limit.",
                max_failed_items,
            )
        # One dict update instead of one BaseOperator.__setattr__ per attribute (see the single operator).
        vars(self).update(
            requests=requests,
            shared_fields=shared_fields,
            mps_conn_id=mps_conn_id,
            region=region,
            wait_for_completion=wait_for_completion,
            deferrable=deferrable,
            poll_interval=poll_interval,
            timeout=timeout,
            rate_limit=rate_limit,
            max_failed_items=max_failed_items,
            durable=durable,
        )

    def _set_xcomargs_dependencies(self) -> None:
        set_xcomargs_dependencies(self)

    @cached_property
    def hook(self) -> MpsHook:
        """
        The hook to the service (built on first use, after templates are rendered).

        Its own retries are off: the batch retries safe failures itself, through the rate limiter.
        """
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(mps_conn_id=self.mps_conn_id, region=self.region, retry_limit=0)

    def execute(self, context: Context) -> list[str | None]:
        """Validate every item, create the tasks (re-attaching to an earlier try's), wait if asked."""
        from airflow_provider_mps.operators._mps_batch import (
            BatchLedger,
            fingerprint,
            item_failure,
            prepare_batch_requests,
        )

        requests = prepare_batch_requests(self.requests, self.shared_fields)
        count = len(requests)
        store = context.get("task_state_store") if self.durable else None
        if self.durable and store is None:
            self.log.warning(
                "task_state_store is not available (Airflow < 3.3): a retry of this task creates every "
                "item again instead of re-attaching to the tasks already created."
            )
        ledger = BatchLedger(store, count) if store is not None else None
        fingerprints = [fingerprint(request) for request in requests]
        task_ids: list[str | None] = [None] * count
        request_ids: list[str | None] = [None] * count
        failures: dict[int, dict[str, Any]] = {}

        for index, entry in (ledger.load(fingerprints) if ledger is not None else {}).items():
            if entry.get("PossiblyCreated"):
                failures[index] = item_failure(
                    index,
                    stage="create",
                    code=str(entry.get("Code")),
                    message=(
                        f"An earlier try's create may have created a task whose TaskId is lost "
                        f"({entry.get('Message')}); it is not resent, to avoid a duplicate task."
                    ),
                    request_id=entry.get("RequestId"),
                    possibly_created=True,
                )
            elif isinstance(entry.get("TaskId"), str) and "Status" not in entry:
                task_ids[index], request_ids[index] = entry["TaskId"], entry.get("RequestId")
        reattached = sum(task_id is not None for task_id in task_ids)
        if reattached or failures:
            self.log.info(
                "Re-attached to %s MPS task(s) created by an earlier try; %s item(s) may have been created "
                "by it and are not resent.",
                reattached,
                len(failures),
            )
        to_create = {
            index: request
            for index, request in enumerate(requests)
            if task_ids[index] is None and index not in failures
        }
        stopped = self._submit(to_create, fingerprints, ledger, task_ids, request_ids, failures)

        if self.wait_for_completion and stopped is None and not self._too_many(failures):
            pending = [task_id for task_id in task_ids if task_id is not None]
            if pending:
                trigger = self._trigger(pending)
                if self.deferrable:
                    self.log.info(
                        "Deferring until %s MPS task(s) finish (timeout %s s).", len(pending), self.timeout
                    )
                    # The XComs carry the batch across the deferral (dag.test() drops defer kwargs).
                    self._push(context, task_ids, request_ids, failures, image_urls=None)
                    self.defer(trigger=trigger, method_name="execute_complete")
                event = _first_event(trigger)
                return self._complete(context, event, task_ids, request_ids, failures)
            return self._finish(context, task_ids, request_ids, failures, image_urls=[[] for _ in task_ids])
        return self._finish(context, task_ids, request_ids, failures, image_urls=None, stopped=stopped)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
    ) -> list[str | None]:
        """
        Resume after the batch trigger fired: check the event, record each item's outcome.

        The TaskIds, RequestIds and failures of the submission are read back from the XComs this
        try pushed before deferring.

        :param context: the task context.
        :param event: the trigger's event payload.
        """
        ti = context["ti"]

        def pushed(key: str) -> Any:
            return ti.xcom_pull(task_ids=ti.task_id, key=key, map_indexes=ti.map_index)

        task_ids, request_ids, failures = (
            pushed(key) for key in ("return_value", BATCH_REQUEST_IDS_XCOM_KEY, BATCH_FAILURES_XCOM_KEY)
        )
        if (
            not isinstance(task_ids, list)
            or not isinstance(request_ids, list)
            or not isinstance(failures, list)
        ):
            raise MpsError(
                "The batch's TaskIds, RequestIds and failures pushed before deferring are missing from "
                "the XComs of this try; the deferral cannot be resumed."
            )
        known = {int(failure["index"]): failure for failure in failures}
        return self._complete(context, event, list(task_ids), list(request_ids), known)

    # -- submission ---------------------------------------------------------------------------

    def _submit(
        self,
        to_create: dict[int, dict[str, Any]],
        fingerprints: list[str],
        ledger: Any,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
    ) -> str | None:
        """Send the creates, recording each outcome as it comes; return why the batch stopped early, if so."""
        from airflow_provider_mps.hooks._mps_errors import create_may_have_succeeded
        from airflow_provider_mps.operators._mps_batch import (
            MAX_CONSECUTIVE_FAILURES,
            NOT_SUBMITTED,
            BatchSubmitter,
            ProgressLog,
            create_failure,
            is_batch_fatal,
            item_failure,
        )
        from airflow_provider_mps.utils.rate_limit import get_rate_limiter

        if not to_create:
            return None
        self.log.info("Submitting %s MPS AIGC image task(s) at up to %s/s.", len(to_create), self.rate_limit)
        # Read the connection on this thread: the workers only send requests.
        limiter = get_rate_limiter(self.hook.rate_limit_key, "CreateAigcImageTask", self.rate_limit)
        submitter = BatchSubmitter(self.hook, limiter, to_create)
        progress = ProgressLog(len(to_create))
        consecutive = 0
        stop_reason: str | None = None
        for done, outcome in enumerate(submitter, start=1):
            index = outcome.index
            if outcome.response is not None:
                task_ids[index] = outcome.response["TaskId"]
                request_ids[index] = outcome.response["RequestId"]
                if ledger is not None:
                    ledger.record(index, fingerprints[index], **outcome.response)
                consecutive = 0
            elif not outcome.submitted:
                failures[index] = item_failure(
                    index, stage="create", code=NOT_SUBMITTED, message=f"Not sent: {stop_reason}"
                )
            elif outcome.error is not None:
                error = outcome.error
                possibly = create_may_have_succeeded(error)
                failures[index] = create_failure(index, error, possibly_created=possibly)
                request_ids[index] = getattr(error, "request_id", None)
                if possibly and ledger is not None:
                    ledger.record(
                        index,
                        fingerprints[index],
                        PossiblyCreated=True,
                        Code=failures[index]["code"],
                        Message=failures[index]["message"],
                        RequestId=failures[index]["request_id"],
                    )
                self.log.warning("requests[%s] failed: %s", index, error)
                transient = possibly or bool(getattr(error, "transient", False))
                consecutive = consecutive + 1 if transient else 0
                if stop_reason is None and is_batch_fatal(error):
                    code = failures[index]["code"]
                    stop_reason = f"the batch stopped at requests[{index}], which failed with {code}."
                elif stop_reason is None and consecutive >= MAX_CONSECUTIVE_FAILURES:
                    stop_reason = (
                        f"the batch stopped after {consecutive} creates in a row failed with service or "
                        f"network errors, the last at requests[{index}]."
                    )
                if stop_reason is not None:
                    submitter.stop()
            progress.tick(done, self.log)
        if stop_reason is not None:
            self.log.error("Not all items were sent: %s", stop_reason)
        return stop_reason

    # -- waiting ------------------------------------------------------------------------------

    def _trigger(self, mps_task_ids: list[str]) -> Any:
        from airflow_provider_mps.triggers.mps import MpsAigcImageTasksTrigger

        wait = self.timeout if self.timeout is not None else _NO_DEADLINE_SECONDS
        return MpsAigcImageTasksTrigger(
            mps_task_ids=mps_task_ids,
            mps_conn_id=self.mps_conn_id,
            poll_interval=self.poll_interval,
            end_time=time.time() + wait,
            region=self.region,
            rate_limit=self.rate_limit,
        )

    def _complete(
        self,
        context: Context,
        event: dict[str, Any] | None,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
    ) -> list[str | None]:
        from airflow_provider_mps.operators._mps_batch import TIMED_OUT, item_failure
        from airflow_provider_mps.triggers.mps import validate_tasks_trigger_event

        expected = [task_id for index, task_id in enumerate(task_ids) if task_id and index not in failures]
        try:
            outcome = validate_tasks_trigger_event(event, mps_task_ids=expected)
        except MpsError:
            self._push(context, task_ids, request_ids, failures, image_urls=None)
            raise
        results = outcome["results"]
        image_urls: list[list[str]] = [[] for _ in task_ids]
        wait_failed: dict[int, str] = {}
        for index, task_id in enumerate(task_ids):
            if task_id is None or index in failures:
                continue
            result = results.get(task_id) or {}
            status = result.get("Status")
            if status == "DONE":
                image_urls[index] = list(result.get("ImageUrls") or [])
                continue
            message: str | None
            if status in ("WAIT", "RUN", None):
                code = TIMED_OUT
                message = f"Still {status or 'unknown'} when waiting ended: {outcome['message']}"
            else:
                code, message = str(result.get("Code") or status), result.get("Message")
            failures[index] = item_failure(
                index,
                stage="wait",
                code=code,
                message=message,
                request_id=result.get("RequestId"),
                mps_task_id=task_id,
            )
            wait_failed[index] = str(status)
        if wait_failed and self._too_many(failures):
            store = context.get("task_state_store") if self.durable else None
            if store is not None:
                from airflow_provider_mps.operators._mps_batch import BatchLedger

                # Items whose task ended without images are created anew by the retry.
                ended = {index: status for index, status in wait_failed.items() if status not in _UNFINISHED}
                BatchLedger(store, len(task_ids)).mark_failed(ended)
        done = sum(bool(urls) for urls in image_urls)
        self.log.info("%s of %s MPS task(s) are DONE; %s item(s) failed.", done, len(task_ids), len(failures))
        return self._finish(context, task_ids, request_ids, failures, image_urls=image_urls)

    # -- outcome ------------------------------------------------------------------------------

    def _too_many(self, failures: dict[int, dict[str, Any]]) -> bool:
        return self.max_failed_items is not None and len(failures) > self.max_failed_items

    def _push(
        self,
        context: Context,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
        image_urls: list[list[str]] | None,
    ) -> list[str | None]:
        returned = [None if index in failures else task_id for index, task_id in enumerate(task_ids)]
        ti = context["ti"]
        ti.xcom_push(key="return_value", value=returned)
        ti.xcom_push(key=BATCH_FAILURES_XCOM_KEY, value=[failures[index] for index in sorted(failures)])
        ti.xcom_push(key=BATCH_REQUEST_IDS_XCOM_KEY, value=request_ids)
        if image_urls is not None:
            ti.xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)
        return returned

    def _finish(
        self,
        context: Context,
        task_ids: list[str | None],
        request_ids: list[str | None],
        failures: dict[int, dict[str, Any]],
        image_urls: list[list[str]] | None,
        stopped: str | None = None,
    ) -> list[str | None]:
        from airflow_provider_mps.operators._mps_batch import TIMED_OUT, BatchLedger, is_refused_request

        returned = self._push(context, task_ids, request_ids, failures, image_urls)
        count = len(task_ids)
        if stopped is not None:
            raise MpsError(
                f"Not all items were sent: {stopped} {len(failures)} of {count} items failed; every failure "
                "is in the 'failures' XCom. A retry re-attaches to the tasks created and sends the rest."
            )
        if self._too_many(failures):
            ordered = [failures[index] for index in sorted(failures)]
            first = ordered[0]
            message = (
                f"{len(failures)} of {count} items failed, more than "
                f"max_failed_items={self.max_failed_items}; "
                f"the first, requests[{first['index']}], failed with {first['code']}: {first['message']} "
                f"(RequestId: {first['request_id'] or 'none'}). Every failure is in the 'failures' XCom."
            )
            if all(
                failure["stage"] == "create" and is_refused_request(failure["code"]) for failure in ordered
            ):
                raise AirflowFailException(
                    f"{message} The service refused these requests' parameters; the same requests cannot "
                    "succeed on a retry, so the task fails without retrying."
                )
            if all(failure["code"] == TIMED_OUT for failure in ordered):
                raise MpsTaskTimeoutError(message)
            raise MpsError(message)
        if failures:
            self.log.warning(
                "%s of %s items failed (at most %s allowed); see the 'failures' XCom.",
                len(failures),
                count,
                self.max_failed_items,
            )
        store = context.get("task_state_store")
        if store is not None and self.durable:
            # Done with this batch: a later clear of this task instance generates new images.
            BatchLedger(store, count).clear()
        self.log.info("Created %s MPS task(s) for %s item(s).", sum(t is not None for t in returned), count)
        return returned


def _first_event(trigger: Any) -> dict[str, Any]:
    """Run ``trigger`` on this worker until its one event: the sync wait shares the deferrable path."""
    import asyncio

    async def first() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return event.payload
        finally:
            await trigger.cleanup()
        raise MpsError("The batch trigger ended without an event.")

    return asyncio.run(first())
