"""
Internals of :class:`~airflow_provider_mps.operators.mps.MpsCreateAigcImageTasksOperator`.

* :func:`prepare_batch_requests` turns the rendered ``requests`` (prompts or request dicts) and
  ``shared_fields`` into validated hook keyword arguments, refusing the whole batch before anything
  is sent when any item is invalid;
* :class:`BatchLedger` keeps the TaskId of every created item in the ``task_state_store`` as it is
  created, in chunks of :data:`LEDGER_CHUNK_SIZE` items, so a retried try re-attaches to them;
* :class:`BatchSubmitter` sends the creates from a small thread pool through the process-wide rate
  limiter, retrying only the failures that certainly created nothing;
* :func:`item_failure` is the one shape of a per-item failure (the ``failures`` XCom).

Nothing here imports the Tencent Cloud SDK.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError, MpsNetworkError
from airflow_provider_mps.validation import (
    AIGC_IMAGE_REQUEST_FIELDS,
    build_aigc_image_request,
    check_literal_fields,
    is_literal,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.hooks.mps import MpsHook
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
#: Consecutive service-side or network failures after which the rest of the batch is not sent.
MAX_CONSECUTIVE_FAILURES = 10
#: Error codes that no other item of the batch can escape: stop sending at the first one.
BATCH_FATAL_CODE_PREFIXES = (
    "AuthFailure",
    "UnauthorizedOperation",
    "OperationDenied",
    "InvalidAction",
    "UnsupportedRegion",
)
#: Error codes of requests the service refuses as malformed: a retry cannot help them.
REFUSED_REQUEST_CODE_PREFIXES = ("InvalidParameter", "MissingParameter", "UnknownParameter")
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


def prepare_batch_requests(requests: object, shared_fields: object = None) -> list[dict[str, Any]]:
    """
    Validate every item and return the hook keyword arguments of each, in input order.

    An item is a prompt string or a dict of request fields (snake_case or the service's names);
    ``shared_fields`` apply to every item that does not set the field itself.

    :param requests: the rendered ``requests`` of the operator.
    :param shared_fields: the rendered ``shared_fields`` of the operator.
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
            prepared.append(build_aigc_image_request(fields, where=f"requests[{index}]."))
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


def validate_literal_batch(requests: object, shared_fields: object) -> None:
    """
    Check, at DAG parse time, the items and shared fields that are already final.

    A templated or ``XComArg`` value is left for run time, item by item.

    :raises MpsInvalidParameterError: naming the first literal item or field that breaks a rule.
    """
    if shared_fields is not None and not isinstance(shared_fields, Mapping) and is_literal(shared_fields):
        _shared_fields(shared_fields)
    if not isinstance(requests, (list, tuple)):
        return
    shared = _canonical_keys(shared_fields) if isinstance(shared_fields, Mapping) else {}
    for index, item in enumerate(requests):
        if isinstance(item, (str, Mapping)):
            check_literal_fields(_item_fields(index, item, shared), where=f"requests[{index}].")
        elif is_literal(item):
            _item_fields(index, item, shared)


def fingerprint(request: Mapping[str, Any]) -> str:
    """A short digest of one prepared request: a retry re-attaches only to an unchanged item."""
    text = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- failures ---------------------------------------------------------------------------------


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
    code = str(getattr(error, "code", ""))
    return any(code == prefix or code.startswith(prefix + ".") for prefix in BATCH_FATAL_CODE_PREFIXES)


def is_refused_request(code: str) -> bool:
    """Whether ``code`` says the service refused the request's parameters (a retry cannot help)."""
    return code.startswith(REFUSED_REQUEST_CODE_PREFIXES)


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
