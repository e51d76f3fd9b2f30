"""
How :class:`~airflow_provider_mps.operators.mps_batch.MpsCreateAigcImageTasksOperator` creates its tasks.

* :class:`BatchLedger` keeps the TaskId of every created item in the ``task_state_store`` as it is
  created, in chunks of :data:`LEDGER_CHUNK_SIZE` items, so a retried try re-attaches to them
  (Airflow 3.3+);
* :class:`BatchSubmitter` sends the creates from a small thread pool through the process-wide rate
  limiter, retrying only the failures that certainly created nothing;
* :func:`submit_batch` records each create's outcome as it comes and stops the batch at an error no
  other item can escape.

Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.exceptions import MpsError, MpsNetworkError
from airflow_provider_mps.operators._mps_batch import (
    MAX_CONSECUTIVE_FAILURES,
    NOT_SUBMITTED,
    create_failure,
    is_batch_fatal,
    item_failure,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch import BatchRun
    from airflow_provider_mps.utils.rate_limit import RateLimiter

log = logging.getLogger(__name__)

#: task_state_store key prefix; chunk ``c`` of the ledger lives under ``"<prefix>.<c>"``.
LEDGER_KEY_PREFIX = "mps_aigc_image_batch"
#: Items per ledger chunk: a chunk stays far below Airflow's 64 KB per-value guideline.
LEDGER_CHUNK_SIZE = 100
#: Creates in flight at once; matches the SDK's HTTP connection pool (10), so keep-alive holds.
SUBMIT_THREADS = 10
#: Retries of a create that certainly created nothing (quota refusal, connection never made).
CREATE_RETRY_LIMIT = 5
#: Backoff scale of those retries, in seconds.
CREATE_RETRY_DELAY = 1.0


# -- the task_state_store ledger --------------------------------------------------------------


class BatchLedger:
    """
    What each item's create produced, kept in the ``task_state_store`` as it happens.

    Item ``i`` lives in chunk ``i // LEDGER_CHUNK_SIZE`` under the key ``"<prefix>.<chunk>"``, as
    ``{"<i>": entry}``; an entry holds the fingerprint ``f`` of the request it was made for and
    either ``TaskId`` / ``RequestId`` (created; ``Status`` once it is known to have failed) or
    ``PossiblyCreated`` (the create failed after it may have reached the service).  Every write
    rewrites one chunk (at most ~15 KB), so storing N items costs N small writes.

    :param store: the task's ``task_state_store`` accessor.
    :param count: how many items the batch has.
    """

    def __init__(self, store: Any, count: int) -> None:
        self._store = store
        self._count = count
        self._chunks: dict[int, dict[str, Any]] = {}

    @staticmethod
    def key(chunk: int) -> str:
        """The task_state_store key of ``chunk``."""
        return f"{LEDGER_KEY_PREFIX}.{chunk}"

    @property
    def chunk_count(self) -> int:
        """How many chunks a batch of this size spans."""
        return math.ceil(self._count / LEDGER_CHUNK_SIZE)

    def _chunk(self, chunk: int) -> dict[str, Any]:
        if chunk not in self._chunks:
            stored = self._store.get(self.key(chunk))
            self._chunks[chunk] = dict(stored) if isinstance(stored, dict) else {}
        return self._chunks[chunk]

    def load(self, fingerprints: list[str]) -> dict[int, dict[str, Any]]:
        """
        Return the stored entries of items whose request is unchanged, by item index.

        :param fingerprints: the :func:`fingerprint` of each current item.
        """
        entries: dict[int, dict[str, Any]] = {}
        for chunk in range(self.chunk_count):
            for key, entry in self._chunk(chunk).items():
                index = int(key) if key.isdigit() else -1
                unchanged = 0 <= index < len(fingerprints) and isinstance(entry, dict)
                if unchanged and entry.get("f") == fingerprints[index]:
                    entries[index] = entry
        return entries

    def record(self, index: int, fingerprint_: str, **entry: Any) -> None:
        """Store ``entry`` for item ``index`` at once (one write of its chunk)."""
        chunk = index // LEDGER_CHUNK_SIZE
        values = self._chunk(chunk)
        values[str(index)] = {"f": fingerprint_, **entry}
        self._store.set(self.key(chunk), dict(values))

    def mark_failed(self, statuses: Mapping[int, str]) -> None:
        """Record that items' tasks ended without images, so a retry creates them anew."""
        changed: set[int] = set()
        for index, status in statuses.items():
            chunk = index // LEDGER_CHUNK_SIZE
            entry = self._chunk(chunk).get(str(index))
            if isinstance(entry, dict) and "TaskId" in entry:
                self._chunks[chunk][str(index)] = {**entry, "Status": status}
                changed.add(chunk)
        for chunk in sorted(changed):
            self._store.set(self.key(chunk), dict(self._chunks[chunk]))

    def clear(self) -> None:
        """Forget the batch (it succeeded): clearing the task later creates new images."""
        for chunk in range(self.chunk_count):
            self._store.delete(self.key(chunk))
        self._chunks.clear()


# -- submission -------------------------------------------------------------------------------


@dataclass
class CreateOutcome:
    """
    What happened to one item's create.

    :param index: the item's position in ``requests``.
    :param response: ``{"TaskId", "RequestId"}`` when the task was created.
    :param error: the error of a create that failed (after any safe retries).
    :param submitted: ``False`` when the batch stopped before this item was sent.
    """

    index: int
    response: dict[str, str] | None = None
    error: MpsError | None = None
    submitted: bool = True


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
    ) -> None:
        self._hook = hook
        self._limiter = limiter
        self._requests = dict(requests)
        self._threads = threads
        self._retry_limit = retry_limit
        self._retry_delay = retry_delay
        self._stopped = threading.Event()

    def stop(self) -> None:
        """Send nothing more; items not yet sent are reported with ``submitted=False``."""
        self._stopped.set()

    def __iter__(self) -> Iterator[CreateOutcome]:
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
        from airflow_provider_mps.hooks._mps_errors import backoff_delay, is_retryable_create_error

        attempt = 0
        while True:
            if self._stopped.is_set():
                return CreateOutcome(index, submitted=False)
            self._limiter.acquire()
            if self._stopped.is_set():
                return CreateOutcome(index, submitted=False)
            try:
                return CreateOutcome(index, response=self._hook.submit_aigc_image_task(**request))
            except MpsError as error:
                if attempt >= self._retry_limit or not is_retryable_create_error(error):
                    return CreateOutcome(index, error=error)
                attempt += 1
                delay = backoff_delay(attempt, self._retry_delay)
                log.warning(
                    "requests[%s]: CreateAigcImageTask failed with %s before creating anything; "
                    "retry %s of %s in %.1f s.",
                    index,
                    getattr(error, "code", type(error).__name__),
                    attempt,
                    self._retry_limit,
                    delay,
                )
                if self._stopped.wait(delay):
                    return CreateOutcome(index, error=error)
            except Exception as error:  # not one of ours: unknown whether the service acted on it
                return CreateOutcome(
                    index,
                    error=MpsNetworkError(
                        "ClientError.Unexpected",
                        f"{type(error).__name__}: {error}",
                        None,
                        "CreateAigcImageTask",
                        request_may_have_reached_service=True,
                    ),
                )


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
    Send the creates of ``to_create``, recording each outcome in ``run`` (and ``ledger``) as it comes.

    Sets ``run.stopped`` when the batch stopped before sending every item: at an error no other item
    can escape, or after :data:`~airflow_provider_mps.operators._mps_batch.MAX_CONSECUTIVE_FAILURES`
    service or network failures in a row.

    :param hook: the hook sending the creates (its own retries off).
    :param limiter: the process-wide ``CreateAigcImageTask`` limiter of the account.
    :param to_create: the prepared requests to send, by item index.
    :param fingerprints: the fingerprint of every item's request, by index.
    :param ledger: where each created TaskId is kept for a retry, if anywhere.
    :param run: this try's state of every item, updated in place.
    :param logger: the operator's logger.
    """
    from airflow_provider_mps.hooks._mps_errors import create_may_have_succeeded

    submitter = BatchSubmitter(hook, limiter, to_create)
    progress = ProgressLog(len(to_create))
    consecutive = 0
    for done, outcome in enumerate(submitter, start=1):
        index = outcome.index
        if outcome.response is not None:
            run.task_ids[index] = outcome.response["TaskId"]
            run.request_ids[index] = outcome.response["RequestId"]
            if ledger is not None:
                ledger.record(index, fingerprints[index], **outcome.response)
            consecutive = 0
        elif not outcome.submitted:
            run.failures[index] = item_failure(
                index, stage="create", code=NOT_SUBMITTED, message=f"Not sent: {run.stopped}"
            )
        elif outcome.error is not None:
            error = outcome.error
            possibly = create_may_have_succeeded(error)
            failure = run.failures[index] = create_failure(index, error, possibly_created=possibly)
            run.request_ids[index] = getattr(error, "request_id", None)
            if possibly and ledger is not None:
                ledger.record(
                    index,
                    fingerprints[index],
                    PossiblyCreated=True,
                    Code=failure["code"],
                    Message=failure["message"],
                    RequestId=failure["request_id"],
                )
            logger.warning("requests[%s] failed: %s", index, error)
            transient = possibly or bool(getattr(error, "transient", False))
            consecutive = consecutive + 1 if transient else 0
            if run.stopped is None and is_batch_fatal(error):
                run.stopped = f"the batch stopped at requests[{index}], which failed with {failure['code']}."
            elif run.stopped is None and consecutive >= MAX_CONSECUTIVE_FAILURES:
                run.stopped = (
                    f"the batch stopped after {consecutive} creates in a row failed with service or "
                    f"network errors, the last at requests[{index}]."
                )
            if run.stopped is not None:
                submitter.stop()
        progress.tick(done, logger)
    if run.stopped is not None:
        logger.error("Not all items were sent: %s", run.stopped)
