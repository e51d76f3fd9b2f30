"""
How :class:`~airflow_provider_mps.operators.mps_batch.MpsCreateAigcImageBatchOperator` creates its tasks.

* :class:`~airflow_provider_mps.operators._mps_batch_ledger.BatchLedger` keeps, in the
  ``task_state_store`` (Airflow Variables before 3.3), that each item is being sent before its create
  leaves and its TaskId once it is created, so a retried try re-attaches to them and never resends
  an item in flight;
* :class:`BatchSubmitter` sends the creates from a small thread pool through the process-wide rate
  limiter, retrying only the failures that certainly created nothing;
* :func:`submit_batch` records each create's outcome as it comes (in the ledger from the thread that
  sent it, so a task killed mid-submission loses no TaskId in flight) and stops the batch at an error
  no other item can escape; :func:`submit_missing`, the operator's ``submit_job``, reserves the spend
  of the items with no task of an earlier try to reuse and sends them through it.

Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.core.api import CREATE_ACTION
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.core.retry import RetryPolicy, call_with_retries
from airflow_provider_mps.exceptions import MpsError, MpsNetworkError
from airflow_provider_mps.operators._mps_batch import (
    MAX_CONSECUTIVE_FAILURES,
    NOT_SUBMITTED,
    create_failure,
    is_batch_fatal,
    item_failure,
)
from airflow_provider_mps.operators._mps_batch_ledger import (
    LEDGER_CHUNK_SIZE,
    LEDGER_KEY_PREFIX,
    BatchLedger,
    LedgerRecorder,
)
from airflow_provider_mps.validation import to_api_params

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch import BatchRun
    from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
    from airflow_provider_mps.utils.rate_limit import RateLimiter

log = logging.getLogger(__name__)

#: Creates in flight at once; matches the SDK's HTTP connection pool (10), so keep-alive holds.
SUBMIT_THREADS = 10
#: Retries of a create that certainly created nothing (quota refusal, connection never made).
CREATE_RETRY_LIMIT = 5
#: Backoff scale of those retries, in seconds.
CREATE_RETRY_DELAY = 1.0


# -- submission -------------------------------------------------------------------------------


@dataclass
class CreateOutcome:
    """
    What happened to one item's create.

    :param index: the item's position in ``requests``.
    :param response: ``{"TaskId", "RequestId"}`` when the task was created.
    :param error: the error of a create that failed (after any safe retries).
    :param submitted: ``False`` when the batch stopped before this item was sent.
    :param possibly_created: the record of a failed create that may have created a task.
    :param count: how many creates of this item may have created a task (this one included).
    """

    index: int
    response: dict[str, str] | None = None
    error: MpsError | None = None
    submitted: bool = True
    possibly_created: dict[str, Any] | None = None
    count: int = 0


class BatchSubmitter:
    """
    Send creates from a small thread pool, each waiting for its slot at the shared rate limiter.

    Iterating yields a :class:`CreateOutcome` per item as creates complete; the caller (the
    operator, on the task's main thread) records each one.  A create is retried only when it
    certainly created nothing: a ``RequestLimitExceeded`` answer, or a connection that was never
    established; every retry waits for a new slot.  :meth:`stop` makes the items not yet sent
    come back with ``submitted=False``.

    :param hook: the hook sending the creates (its own retries off).
    :param limiter: the process-wide ``CreateAigcImageTask`` limiter of the account.
    :param requests: the prepared requests to send, by item index.
    :param threads: the most creates in flight at once.
    :param retry_limit: how many times one item's safe-to-retry failure is retried.
    :param retry_delay: the backoff scale of those retries, in seconds.
    :param on_outcome: called with each create's outcome on the thread that sent it, before the
        outcome is yielded: what it records survives a main thread that stops iterating.
    :param on_sending: called with an item's index on the thread about to send its create, right
        before each send: what it records survives a process killed while the create is in flight.
    """

    def __init__(
        self,
        hook: MpsHook,
        limiter: RateLimiter,
        requests: Mapping[int, dict[str, Any]],
        *,
        threads: int = SUBMIT_THREADS,
        retry_limit: int = CREATE_RETRY_LIMIT,
        retry_delay: float = CREATE_RETRY_DELAY,
        on_outcome: Callable[[CreateOutcome], None] | None = None,
        on_sending: Callable[[int], None] | None = None,
    ) -> None:
        self._hook = hook
        self._limiter = limiter
        self._requests = dict(requests)
        self._threads = threads
        self._retry_limit = retry_limit
        self._retry_delay = retry_delay
        self._stopped = threading.Event()
        self._on_outcome = on_outcome
        self._on_sending = on_sending

    def stop(self) -> None:
        """Send nothing more; items not yet sent are reported with ``submitted=False``."""
        self._stopped.set()

    def __iter__(self) -> Generator[CreateOutcome, None, None]:
        if not self._requests:
            return
        threads = max(1, min(self._threads, len(self._requests)))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mps-batch-create") as pool:
            futures = [pool.submit(self._create, index, request) for index, request in self._requests.items()]
            try:
                for future in as_completed(futures):
                    yield future.result()
            finally:
                self._stopped.set()

    def _create(self, index: int, request: dict[str, Any]) -> CreateOutcome:
        outcome = self._send(index, request)
        if self._on_outcome is not None and outcome.submitted:
            self._on_outcome(outcome)
        return outcome

    def _send(self, index: int, request: dict[str, Any]) -> CreateOutcome:
        policy = RetryPolicy(
            self._retry_limit,
            self._retry_delay,
            lambda error: classify(error, CREATE_ACTION) is Handling.RETRY,
            f"requests[{index}]: {CREATE_ACTION}",
            log,
        )
        params = to_api_params(request)

        def attempt_once(timeout: float | None) -> dict[str, str]:
            for wait in (None, self._limiter.acquire):
                if wait is not None:
                    wait()
                if self._stopped.is_set():
                    raise _NotSent
            if self._on_sending is not None:
                self._on_sending(index)
            return self._hook.submit_request(params)

        try:
            return CreateOutcome(
                index, response=call_with_retries(attempt_once, policy, sleep=self._stopped.wait)
            )
        except _NotSent:
            return CreateOutcome(index, submitted=False)
        except MpsError as error:
            return CreateOutcome(index, error=error)
        except Exception as error:  # not one of ours: unknown whether the service acted on it
            unexpected = MpsNetworkError(
                "ClientError.Unexpected",
                f"{type(error).__name__}: {error}",
                None,
                CREATE_ACTION,
                request_may_have_reached_service=True,
            )
            return CreateOutcome(index, error=unexpected)


class _NotSent(Exception):
    """The batch stopped before this item was sent."""


class ProgressLog:
    """Log submission progress every ``every`` seconds: done, total, and the rate achieved."""

    def __init__(self, total: int, every: float = 10.0) -> None:
        self.total = total
        self.every = every
        self.started = time.monotonic()
        self._next = self.started + every

    def tick(self, done: int, logger: Any) -> None:
        """Log once per period."""
        now = time.monotonic()
        if now >= self._next or done == self.total:
            self._next = now + self.every
            elapsed = max(now - self.started, 1e-9)
            logger.info(
                "Submitted %s of %s MPS AIGC image tasks in %.1f s (%.1f/s).",
                done,
                self.total,
                elapsed,
                done / elapsed,
            )


def submit_missing(
    operator: MpsCreateAigcImageBatchOperator,
    context: Context,
    run: BatchRun,
    requests: list[dict[str, Any]],
    fingerprints: list[str],
    ledger: BatchLedger | None,
) -> None:
    """
    Create every item that has no task of an earlier try to reuse: the batch operator's ``submit_job``.

    The whole count is reserved at once, before the first create: if the budget cannot cover every
    item, nothing is sent.  Items re-attached to an earlier try's tasks reserve nothing.

    :param operator: the batch operator, its templates rendered.
    :param context: the task context.
    :param run: this try's state of every item, updated in place.
    :param requests: the prepared requests of every item, by index.
    :param fingerprints: the fingerprint of every item's request, by index.
    :param ledger: where each created TaskId is kept for a retry, if anywhere.
    """
    from airflow_provider_mps.operators import _spend
    from airflow_provider_mps.utils.rate_limit import RateLimiter, headroom_for

    to_create = {
        index: request
        for index, request in enumerate(requests)
        if run.task_ids[index] is None and index not in run.failures
    }
    if not to_create:
        return
    hook = operator.hook
    _spend.reserve(
        hook,
        list(to_create.values()),
        what=_spend.what_creates(f"the {len(to_create)} item(s) of the batch", operator.task_id, context),
    )
    operator.log.info(
        "Submitting %s MPS AIGC image task(s) at up to %s/s.", len(to_create), operator.rate_limit
    )
    # The batch's own spacing; each create also waits at the process's limiter of the account.
    limiter = RateLimiter(operator.rate_limit, headroom=headroom_for(CREATE_ACTION))
    hook.get_conn()  # the connection is read on this thread: the workers only send
    submit_batch(hook, limiter, to_create, fingerprints, ledger, run, operator.log)


def submit_batch(
    hook: MpsHook,
    limiter: RateLimiter,
    to_create: Mapping[int, dict[str, Any]],
    fingerprints: list[str],
    ledger: BatchLedger | None,
    run: BatchRun,
    logger: Any,
) -> None:
    """
    Send the creates of ``to_create``, recording each outcome in ``ledger`` and ``run`` as it comes.

    The ledger is written from the thread that sent each create, as soon as it returned: a task killed
    while creates are in flight loses none of their TaskIds.  ``run`` is updated on this thread.  Sets
    ``run.stopped`` when the batch stopped before sending every item: at an error no other item can
    escape, or after :data:`~airflow_provider_mps.operators._mps_batch.MAX_CONSECUTIVE_FAILURES`
    service or network failures in a row.

    :param hook: the hook sending the creates (its own retries off).
    :param limiter: the process-wide ``CreateAigcImageTask`` limiter of the account.
    :param to_create: the prepared requests to send, by item index.
    :param fingerprints: the fingerprint of every item's request, by index.
    :param ledger: where each created TaskId is kept for a retry, if anywhere.
    :param run: this try's state of every item, updated in place.
    :param logger: the operator's logger.
    """
    recorder = LedgerRecorder(hook, to_create, fingerprints, ledger, logger)
    submitter = BatchSubmitter(
        hook, limiter, to_create, on_outcome=recorder.keep, on_sending=recorder.sending
    )
    _take_all(submitter, len(to_create), run, logger, recorder.log_duplicate)
    if run.stopped is not None:
        logger.error("Not all items were sent: %s", run.stopped)


def _take_all(submitter: BatchSubmitter, total: int, run: BatchRun, logger: Any, log_duplicate: Any) -> None:
    """
    Record every outcome of ``submitter`` in ``run`` as it comes, stopping it once ``run`` is stopped.

    :param submitter: the creates to send.
    :param total: how many items it sends, for the progress log.
    :param run: this try's state of every item, updated in place.
    :param logger: the operator's logger.
    :param log_duplicate: logs the WARNING naming a create that may have created a task.
    """
    progress = ProgressLog(total)
    consecutive = 0
    outcomes = submitter.__iter__()
    try:
        for done, outcome in enumerate(outcomes, start=1):
            consecutive = _take(outcome, run, consecutive, logger, log_duplicate)
            if run.stopped is not None:
                submitter.stop()
            progress.tick(done, logger)
    finally:
        # Also when this thread is stopped (the task killed): wait for the creates in flight, whose
        # threads record them in the ledger.
        submitter.stop()
        outcomes.close()


def _take(outcome: CreateOutcome, run: BatchRun, consecutive: int, logger: Any, log_duplicate: Any) -> int:
    """Record one outcome in ``run``; return the new count of consecutive service or network failures."""
    index = outcome.index
    if outcome.response is not None:
        run.task_ids[index] = outcome.response["TaskId"]
        run.request_ids[index] = outcome.response["RequestId"]
        return 0
    if not outcome.submitted:
        run.failures[index] = item_failure(
            index, stage="create", code=NOT_SUBMITTED, message=f"Not sent: {run.stopped}"
        )
        return consecutive
    error = outcome.error
    if error is None:  # pragma: no cover - an outcome is a response, an error or not submitted
        return consecutive
    possibly = outcome.possibly_created is not None
    failure = run.failures[index] = create_failure(index, error, possibly_created=possibly)
    run.request_ids[index] = getattr(error, "request_id", None)
    logger.warning("requests[%s] failed: %s", index, error)
    if outcome.possibly_created is not None:
        run.possibly_created[index] = outcome.possibly_created
        log_duplicate(outcome)
    transient = possibly or bool(getattr(error, "transient", False))
    consecutive = consecutive + 1 if transient else 0
    if run.stopped is None and is_batch_fatal(error):
        run.stopped = f"the batch stopped at requests[{index}], which failed with {failure['code']}."
    elif run.stopped is None and consecutive >= MAX_CONSECUTIVE_FAILURES:
        run.stopped = (
            f"the batch stopped after {consecutive} creates in a row failed with service or "
            f"network errors, the last at requests[{index}]."
        )
    return consecutive


__all__ = [
    "LEDGER_CHUNK_SIZE",
    "LEDGER_KEY_PREFIX",
    "BatchLedger",
    "BatchSubmitter",
    "CreateOutcome",
    "submit_batch",
    "submit_missing",
]
