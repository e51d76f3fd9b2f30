"""Operator creating a batch of Tencent Cloud MPS AIGC image tasks from one Airflow task, at the quota."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin

from airflow_provider_mps import DEFAULT_CONN_ID, IMAGE_URLS_XCOM_KEY, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.operators._create import (
    DEFAULT_DEFERRABLE,
    WAIT_KNOBS,
    assign_given,
    defer,
    start,
    trigger_arguments,
)
from airflow_provider_mps.operators._spend import check_cap
from airflow_provider_mps.operators._try_record import execute_resumable, forget_on_success, try_record
from airflow_provider_mps.validation import check_wait

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.openlineage.extractors import OperatorLineage
    from pydantic import JsonValue

    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch import BatchRun
    from airflow_provider_mps.operators._mps_batch_submit import BatchLedger

#: XCom key of the batch operator's failed items.
BATCH_FAILURES_XCOM_KEY = "failures"

#: XCom key of the batch operator's create RequestId per item.
BATCH_REQUEST_IDS_XCOM_KEY = "request_ids"

#: XCom key carrying the TaskIds across a deferral when ``do_xcom_push=False`` (no ``return_value``).
_DEFERRED_TASK_IDS_XCOM_KEY = "deferred_task_ids"

#: The batch's default ``max_images``: a catalogue of 1000 products with 5 shots each fits, while an
#: upstream XCom gone wrong (100 000 rows) is refused before anything is sent.
DEFAULT_MAX_IMAGES = 5000
#: ``get_job_status`` of a batch whose every item has a task to wait for: the retry re-attaches.
SUBMITTED = "SUBMITTED"
#: ``get_job_status`` of a batch with items to create (again): the retry submits those only.
INCOMPLETE = "INCOMPLETE"


class MpsCreateAigcImageBatchOperator(ResumableJobMixin, BaseOperator):
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
    reported as a failure with ``possibly_created`` set and a WARNING naming it.  When those items
    alone are more than ``max_failed_items``, no retry could succeed without sending them again, so
    the task fails without Airflow retries, naming the first and ``resubmit_on_retry``.  The batch
    stops sending at an error no other item can escape (bad credentials, no permission), and after
    :data:`~airflow_provider_mps.operators._mps_batch.MAX_CONSECUTIVE_FAILURES` service or network
    failures in a row; the items not sent are reported as ``NotSubmitted``.

    Re-attach on retry, on every Airflow line: the operator is a ``ResumableJobMixin`` whose job is
    the batch.  Each created TaskId is written to its ledger (the task's ``task_state_store`` on
    Airflow 3.3+, Airflow Variables named after the task instance before) by the thread that sent
    the create, as soon as it returned (a task killed mid-submission loses none in flight), so a
    retried try reuses the tasks of unchanged items (same position, same request) instead of paying
    for them again, creates the items that failed or were never sent, and never resends a possibly
    created one.  On 3.3 the record is left to Airflow's ``[state_store] clear_on_success``
    (``False`` by default: clearing a successful task returns the same tasks); before 3.3 its
    Variables are deleted when the task succeeds.  With ``durable=False`` every try creates every item.

    Waiting: with ``wait_for_completion=True`` the operator waits until every task is ``DONE`` or
    ``FAIL`` (``deferrable=True``: in the triggerer, with one
    :class:`~airflow_provider_mps.triggers.mps.MpsAigcImageBatchTrigger` for the whole batch), polling
    within the describe quota.

    XComs: ``return_value`` (unless ``do_xcom_push=False``) is the list of TaskIds in input order,
    ``None`` for each failed item;
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
    :param durable: keep the created TaskIds for a retry to re-attach to (``True`` by default, on
        every line); ``False`` creates every item on every try.
    :param resubmit_on_retry: accept paying twice rather than failing: a retry (or a clear) sends
        again the items whose create may have created a task (each possible duplicate is counted in
        the log).  Without it such items are never resent.
    :param max_images: the most images the batch may ask for: the sum of ``output_image_count`` over
        its rendered items (1 for an item that does not set it).  Over it the task fails without
        retries before anything is sent.  The default, :data:`DEFAULT_MAX_IMAGES`, is far above a
        catalogue run and far below a mis-wired XCom of 100 000 rows; ``None`` sets no cap.
    :param strict_validation: refuse values outside the enumerations documented today (model names
        and versions, aspect ratios, resolutions, output formats, scene types) before sending; by
        default such a value is sent with a WARNING and the service decides.
    :param openlineage_include_prompt: put each item's prompt in the OpenLineage events (the
        ``tencentcloudMps_aigcImageBatch`` run facet); off by default, as prompts can be confidential.
    """

    template_fields: Sequence[str] = ("requests", "shared_fields", "region")
    template_fields_renderers = {"requests": "json", "shared_fields": "json"}
    ui_color = "#e8f3ff"

    #: task_state_store key of the batch's summary; the items' TaskIds are in the ledger's chunks
    #: (:class:`~airflow_provider_mps.operators._mps_batch_submit.BatchLedger`).
    external_id_key = "mps_aigc_image_batch.submitted"

    # The arguments' defaults, the signature's: only arguments given are assigned (see ._create).
    requests: list[Any] | str  # required: no default, always assigned
    shared_fields: dict[str, Any] | str | None = None
    mps_conn_id: str = DEFAULT_CONN_ID
    region: str | None = None
    wait_for_completion: bool = False
    deferrable: bool = DEFAULT_DEFERRABLE
    poll_interval: float = 10.0
    timeout: float | None = 3600.0
    rate_limit: float = SERVICE_QUOTA_PER_SECOND
    max_failed_items: int | None = 0
    durable: bool = True
    resubmit_on_retry: bool = False
    max_images: int | None = DEFAULT_MAX_IMAGES
    strict_validation: bool = False
    openlineage_include_prompt: bool = False

    def __init__(
        self,
        *,
        requests: list[Any] | str,
        shared_fields: dict[str, Any] | str | None = None,
        mps_conn_id: str = DEFAULT_CONN_ID,
        region: str | None = None,
        wait_for_completion: bool = False,
        deferrable: bool = DEFAULT_DEFERRABLE,
        poll_interval: float = 10.0,
        timeout: float | None = 3600.0,
        rate_limit: float = SERVICE_QUOTA_PER_SECOND,
        max_failed_items: int | None = 0,
        durable: bool | None = None,
        resubmit_on_retry: bool = False,
        max_images: int | None = DEFAULT_MAX_IMAGES,
        strict_validation: bool = False,
        openlineage_include_prompt: bool = False,
        **kwargs: Any,
    ) -> None:
        start(self, durable, kwargs)
        given = assign_given(self, locals())
        from airflow_provider_mps.operators._mps_batch import check_max_failed_items, validate_literal_batch

        # Literal values are final now: an obviously wrong DAG is an import error, not a failed run.
        validate_literal_batch(requests, shared_fields, strict=strict_validation)
        if "max_images" in given:  # the cap itself: a whole number of at least 1, or None
            check_cap([], max_images, batch=True)
        if not WAIT_KNOBS.isdisjoint(given):
            check_wait(poll_interval, timeout, rate_limit)
        if "max_failed_items" in given:
            check_max_failed_items(max_failed_items)

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
        from airflow_provider_mps.operators._mps_batch import prepare_batch_requests
        from airflow_provider_mps.operators._reattach import fingerprint

        self._requests = prepare_batch_requests(
            self.requests, self.shared_fields, strict=self.strict_validation
        )
        check_cap(self._requests, self.max_images, batch=True)
        self._fingerprints = [fingerprint(request) for request in self._requests]
        self._run: BatchRun | None = None
        execute_resumable(self, context, try_record(context, durable=self.durable))
        run = self._resume(context)
        if run.event is not None:
            return self._complete(context, run.event, run)
        return self._finish(context, run)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str | None]:
        """
        Resume after the batch trigger fired: check the event, record each item's outcome.

        The TaskIds, RequestIds and failures of the submission are read back from the XComs this
        try pushed before deferring.

        :param context: the task context.
        :param event: the trigger's event payload.
        """
        from airflow_provider_mps.operators._mps_batch import BatchRun

        ids_key = "return_value" if self.do_xcom_push else _DEFERRED_TASK_IDS_XCOM_KEY
        run = BatchRun.pushed(context["ti"], (ids_key, BATCH_REQUEST_IDS_XCOM_KEY, BATCH_FAILURES_XCOM_KEY))
        return self._complete(context, event, run)

    # -- ResumableJobMixin's protocol: the job is the batch, its record the ledger ------------------

    def submit_job(self, context: Context) -> JsonValue:
        """Create every item that has no task of an earlier try to reuse; return the batch's summary."""
        from airflow_provider_mps.operators._mps_batch_submit import submit_missing

        run = self._resume(context)
        submit_missing(self, context, run, self._requests, self._fingerprints, self._ledger)
        return {"Items": len(self._requests)}

    def get_job_status(self, external_id: JsonValue, context: Context) -> str:
        """``SUBMITTED`` when an earlier try left a task for every item to wait for, else ``INCOMPLETE``."""
        run = self._resume(context)
        missing = [
            index
            for index, task_id in enumerate(run.task_ids)
            if task_id is None and index not in run.failures
        ]
        return INCOMPLETE if missing else SUBMITTED

    def is_job_active(self, status: str) -> bool:
        """Whether every item has a task: the retry waits for them without submitting anything."""
        return status == SUBMITTED

    def is_job_succeeded(self, status: str) -> bool:
        """Never: a recorded batch (kept after success too) is re-attached to through ``is_job_active``."""
        return False

    def poll_until_complete(self, external_id: JsonValue, context: Context) -> None:
        """Wait as configured: not at all, on this worker, or deferred to the triggerer."""
        run = self._resume(context)
        if not self.wait_for_completion or run.stopped is not None or self._too_many(run.failures):
            return
        pending = run.pending()
        if not pending:
            run.image_urls = [[] for _ in run.task_ids]
            return
        trigger = self._trigger(pending)
        if self.deferrable:
            self.log.info("Deferring until %s MPS task(s) finish (timeout %s s).", len(pending), self.timeout)
            # The XComs carry the batch across the deferral (dag.test() drops defer kwargs).
            self._push(context, run, image_urls=None, deferring=True)
            defer(self, trigger)
        from airflow_provider_mps.triggers.mps import run_trigger

        run.event = run_trigger(trigger)

    def get_job_result(self, external_id: JsonValue, context: Context) -> None:
        """Nothing to fetch: :meth:`execute` returns the TaskIds and pushes the XComs."""

    def _resume(self, context: Context) -> BatchRun:
        """Return this try's state, read once from what an earlier try recorded in the ledger (if any)."""
        if self._run is not None:
            return self._run
        from airflow_provider_mps.operators._mps_batch_resume import resume_run
        from airflow_provider_mps.operators._mps_batch_submit import BatchLedger

        store = try_record(context, durable=self.durable)
        self._ledger: BatchLedger | None = (
            BatchLedger(store, len(self._requests)) if store is not None else None
        )
        self._run = resume_run(
            self._ledger, self._fingerprints, resubmit_on_retry=self.resubmit_on_retry, logger=self.log
        )
        return self._run

    # -- waiting ------------------------------------------------------------------------------

    def _trigger(self, mps_task_ids: list[str]) -> Any:
        from airflow_provider_mps.triggers.mps import MpsAigcImageBatchTrigger

        return MpsAigcImageBatchTrigger(mps_task_ids=mps_task_ids, **trigger_arguments(self))

    def _complete(self, context: Context, event: dict[str, Any] | None, run: BatchRun) -> list[str | None]:
        from airflow_provider_mps.core.status import is_final
        from airflow_provider_mps.operators._mps_batch import record_wait_results
        from airflow_provider_mps.triggers.mps import validate_batch_trigger_event

        try:
            outcome = validate_batch_trigger_event(event, mps_task_ids=run.pending())
        except MpsError:
            self._push(context, run, image_urls=None)
            raise
        wait_failed = record_wait_results(run, outcome)
        if wait_failed and self._too_many(run.failures):
            store = try_record(context, durable=self.durable)
            if store is not None:
                from airflow_provider_mps.operators._mps_batch_submit import BatchLedger

                # Items whose task ended without images are created anew by the retry.
                ended = {index: str(status) for index, status in wait_failed.items() if is_final(status)}
                BatchLedger(store, len(run.task_ids)).mark_failed(ended)
        done = sum(bool(urls) for urls in run.image_urls or [])
        self.log.info(
            "%s of %s MPS task(s) are DONE; %s item(s) failed.", done, len(run.task_ids), len(run.failures)
        )
        return self._finish(context, run)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage:
        """
        Return the batch's lineage: the ``tencentcloudMps_aigcImageBatch`` run facet, item by item.

        :param task_instance: the finished task instance.
        """
        from airflow_provider_mps.operators._mps_batch import prepare_batch_requests
        from airflow_provider_mps.utils.openlineage import batch_lineage, pushed_xcom

        # After a deferral this is a new operator: the items are prepared again from the rendered fields.
        requests = getattr(self, "_requests", None) or prepare_batch_requests(
            self.requests, self.shared_fields, strict=self.strict_validation
        )
        return batch_lineage(
            requests,
            mps_task_ids=pushed_xcom(task_instance, "return_value") or [],
            image_urls=pushed_xcom(task_instance, IMAGE_URLS_XCOM_KEY) if self.wait_for_completion else None,
            include_prompt=self.openlineage_include_prompt,
        )

    # -- outcome ------------------------------------------------------------------------------

    def _too_many(self, failures: dict[int, dict[str, Any]]) -> bool:
        return self.max_failed_items is not None and len(failures) > self.max_failed_items

    def _push(
        self, context: Context, run: BatchRun, image_urls: list[list[str]] | None, *, deferring: bool = False
    ) -> list[str | None]:
        failures = run.failures
        returned = [None if index in failures else task_id for index, task_id in enumerate(run.task_ids)]
        ti = context["ti"]
        if self.do_xcom_push:
            ti.xcom_push(key="return_value", value=returned)
        elif deferring:
            # The TaskIds must reach execute_complete; return_value is not this operator's to push.
            ti.xcom_push(key=_DEFERRED_TASK_IDS_XCOM_KEY, value=returned)
        ti.xcom_push(key=BATCH_FAILURES_XCOM_KEY, value=[failures[index] for index in sorted(failures)])
        ti.xcom_push(key=BATCH_REQUEST_IDS_XCOM_KEY, value=run.request_ids)
        if image_urls is not None:
            ti.xcom_push(key=IMAGE_URLS_XCOM_KEY, value=image_urls)
        return returned

    def _finish(self, context: Context, run: BatchRun) -> list[str | None]:
        from airflow_provider_mps.operators._mps_batch import raise_for_outcome

        returned = self._push(context, run, run.image_urls)
        count = len(run.task_ids)
        raise_for_outcome(
            run,
            max_failed_items=self.max_failed_items,
            resubmit_on_retry=self.resubmit_on_retry,
            durable=self.durable,
            logger=self.log,
        )
        # On 3.3 the ledger stays: Airflow drops it once the task instance succeeded, when [state_store]
        # clear_on_success is set.  Before 3.3 its Variables go now (docs/failure-behaviour.md).
        from airflow_provider_mps.operators._mps_batch_ledger import BatchLedger

        chunks = BatchLedger(None, count).chunk_count
        forget_on_success(
            try_record(context, durable=self.durable),
            self.external_id_key,
            *map(BatchLedger.key, range(chunks)),
        )
        self.log.info("Created %s MPS task(s) for %s item(s).", sum(t is not None for t in returned), count)
        return returned
