"""
Deferrable waiting for MPS AIGC image tasks: the provider's one wait loop.

:class:`MpsAigcImageTaskTrigger` waits for one task, :class:`MpsAigcImageTasksTrigger` for a
batch; both poll ``DescribeAigcImageTask`` through the hook's request path and fire exactly one
event.  A worker that waits without deferring runs the same trigger in-process
(:func:`run_trigger`), so the operators, the sensor's callers and :meth:`MpsHook.wait_for_aigc_image_task`
all wait the same way.  The events are checked on resume by :mod:`~airflow_provider_mps.triggers._events`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mps.core.api import DESCRIBE_ACTION
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.core.retry import MIN_REQUEST_TIMEOUT, backoff_delay
from airflow_provider_mps.core.status import LocalStatus, TriggerEventStatus, is_done, is_failed, is_final
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.triggers._events import validate_tasks_trigger_event, validate_trigger_event
from airflow_provider_mps.utils.rate_limit import DEFAULT_RATE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_mps.hooks.mps import MpsHook

__all__ = [
    "MpsAigcImageTaskTrigger",
    "MpsAigcImageTasksTrigger",
    "run_trigger",
    "validate_tasks_trigger_event",
    "validate_trigger_event",
]

#: Longest pause between two attempts after transient errors, in seconds (unless polling is slower).
MAX_BACKOFF_SECONDS = 60.0
#: Shortest backoff base, in seconds, so a zero ``poll_interval`` cannot spin on errors.
MIN_BACKOFF_SECONDS = 0.05
#: With no timeout a trigger still needs an ``end_time``: a year, effectively none.
NO_DEADLINE_SECONDS = 365 * 24 * 3600.0
#: Describe calls one batch trigger keeps in flight at once (each still waits for its limiter slot).
BATCH_IN_FLIGHT = 10

Result = dict[str, Any]


def end_time_after(timeout: float | None) -> float:
    """The ``end_time`` of a trigger waiting ``timeout`` seconds from now (``None``: effectively for ever)."""
    return time.time() + (NO_DEADLINE_SECONDS if timeout is None else timeout)


class _MpsPollingTrigger(BaseTrigger):
    """
    What both triggers share: their arguments, hook, start, backoff, cleanup and kill notice.

    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param poll_interval: seconds between two polls.
    :param end_time: when to give up, as epoch seconds.
    :param region: the region overriding the connection's, if any.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second this trigger sends (its
        own spacing; the process's share of the account quota applies to all triggers together).
    """

    #: The subclass's own serialized arguments, besides the shared ones.
    own_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        mps_conn_id: str,
        poll_interval: float,
        end_time: float,
        region: str | None = None,
        rate_limit: float = DEFAULT_RATE,
    ) -> None:
        super().__init__()
        self.mps_conn_id = mps_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.region = region
        self.rate_limit = float(rate_limit)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and every constructor argument, JSON-safe."""
        fields = (*self.own_fields, "mps_conn_id", "poll_interval", "end_time", "region", "rate_limit")
        kwargs = {name: getattr(self, name) for name in fields}
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    @cached_property
    def hook(self) -> MpsHook:
        """
        The hook polling the service (built lazily; no connection lookup here).

        Its own retries are off: the trigger retries transient errors itself, for as long as
        ``end_time`` allows.  Each request waits at the process's rate limiter of the account.
        """
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(
            mps_conn_id=self.mps_conn_id, region=self.region, retry_limit=0, rate_limit=self.rate_limit
        )

    async def _start(self, polled: str) -> str | None:
        """
        Build the hook in a worker thread, read the connection and get the shared SDK client.

        The first import of the hook's module in a triggerer takes tens of milliseconds; a sync
        connection lookup on the event loop fails on 3.0.  Return why polling cannot start, or ``None``.

        :param polled: what is polled, named in the reason (``task <TaskId>``, ``tasks``).
        """
        try:
            await asyncio.to_thread(lambda: self.hook)
            await self.hook.aget_conn()
        except Exception as error:  # a missing or unusable connection: nothing to retry
            return f"Cannot poll MPS {polled} with {self.mps_conn_id!r}: {error}"
        return None

    def _backoff(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed polls in a row: the core backoff, scaled by the poll."""
        base = max(self.poll_interval, MIN_BACKOFF_SECONDS)
        return backoff_delay(failures, base, cap=max(MAX_BACKOFF_SECONDS, base))

    def _deadline(self) -> str:
        return datetime.fromtimestamp(self.end_time, tz=timezone.utc).isoformat()

    def _describing(self) -> str:
        raise NotImplementedError

    async def cleanup(self) -> None:
        """Release the hook's SDK client (closed once no trigger uses it); the MPS tasks are left alone."""
        if "hook" in self.__dict__:
            await self.hook.aclose()

    async def on_kill(self) -> None:
        """
        Log that the MPS task keeps running: the service offers no call to cancel it.

        Airflow calls this when a user marks the deferred task failed or successful, or clears it.
        """
        self.log.warning(
            "MPS has no API to cancel AIGC image tasks; %s keeps running (and is billed) on the "
            "service. Only the Airflow task was stopped.",
            self._describing(),
        )


class MpsAigcImageTaskTrigger(_MpsPollingTrigger):
    """
    Poll an MPS AIGC image task until it is ``DONE`` or ``FAIL``, or ``end_time`` passes.

    Every poll goes through the hook's request path, which waits at the process's
    ``DescribeAigcImageTask`` limiter of the connection's account and endpoint
    (``[tencentcloud_mps] quota_share``); ``rate_limit`` only spaces this trigger's own polls.  What
    :func:`~airflow_provider_mps.core.errors.classify` calls ``RETRY`` is retried with the core
    backoff until ``end_time``; any other error ends the trigger with an ``error`` event.

    The trigger fires exactly one event, ``{"status", "mps_task_id", "result", "message"}``, where
    ``status`` is one of:

    * ``success`` — the task is ``DONE``; ``result`` is the describe dict with ``ImageUrls``;
    * ``failed`` — the task is ``FAIL``; ``message`` is the service's ``Message`` and ``result``
      the describe dict (with its ``RequestId``);
    * ``timeout`` — ``end_time`` passed first; ``result`` is the last describe dict, if any;
    * ``error`` — an error that is not retried; ``message`` holds its code and RequestId.

    MPS has no call to cancel an AIGC task: when the deferred Airflow task is killed, the MPS task
    keeps running (and is billed) on the service; :meth:`on_kill` only logs this.

    :param mps_task_id: the MPS TaskId to wait for.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param poll_interval: seconds between two polls of a task that is still running.
    :param end_time: when to give up, as epoch seconds.
    :param region: the region overriding the connection's, if any.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second this trigger sends.
    """

    own_fields = ("mps_task_id",)

    def __init__(
        self,
        *,
        mps_task_id: str,
        mps_conn_id: str,
        poll_interval: float,
        end_time: float,
        region: str | None = None,
        rate_limit: float = DEFAULT_RATE,
    ) -> None:
        super().__init__(
            mps_conn_id=mps_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            region=region,
            rate_limit=rate_limit,
        )
        self.mps_task_id = mps_task_id

    def _describing(self) -> str:
        return f"task {self.mps_task_id}"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task is terminal, the deadline passes or an error is not retried."""
        if (cannot := await self._start(f"task {self.mps_task_id}")) is not None:
            yield self._event(TriggerEventStatus.ERROR, None, cannot)
            return
        last: Result | None = None
        last_error: MpsError | str | None = None
        failures = 0
        while True:
            delay = self.poll_interval
            # A describe still in flight at end_time is given up (at least MIN_REQUEST_TIMEOUT in).
            answer_by = max(self.end_time - time.time(), MIN_REQUEST_TIMEOUT)
            try:
                last = await asyncio.wait_for(
                    self.hook.adescribe_aigc_image_task(self.mps_task_id), answer_by
                )
            except asyncio.TimeoutError:
                last_error = f"{DESCRIBE_ACTION} did not answer within the {answer_by:.1f} s left."
            except MpsError as error:
                if classify(error, DESCRIBE_ACTION) is not Handling.RETRY:
                    message = f"Polling MPS task {self.mps_task_id} failed: {error}"
                    yield self._event(TriggerEventStatus.ERROR, None, message)
                    return
                last_error, failures = error, failures + 1
                delay = self._backoff(failures)
                self.log.warning(
                    "Polling MPS task %s failed (attempt %s), retrying in %.1f s: %s",
                    self.mps_task_id,
                    failures,
                    delay,
                    error,
                )
            else:
                failures, last_error = 0, None
                if is_done(last["Status"]):
                    yield self._event(
                        TriggerEventStatus.SUCCESS, last, f"MPS task {self.mps_task_id} is DONE."
                    )
                    return
                if is_failed(last["Status"]):
                    message = last.get("Message") or "The service gave no message."
                    yield self._event(TriggerEventStatus.FAILED, last, message)
                    return
                self.log.info("MPS task %s is %s", self.mps_task_id, last["Status"])
            remaining = self.end_time - time.time()
            if remaining <= 0:
                status = last["Status"] if last else "unknown"
                message = (
                    f"MPS task {self.mps_task_id} did not finish before {self._deadline()}; "
                    f"its last status was {status}."
                )
                if last_error is not None:
                    message += f" The last poll failed: {last_error}"
                yield self._event(TriggerEventStatus.TIMEOUT, last, message)
                return
            await asyncio.sleep(min(delay, remaining))

    def _event(self, status: TriggerEventStatus, result: Result | None, message: str) -> TriggerEvent:
        return TriggerEvent(
            {"status": status.value, "mps_task_id": self.mps_task_id, "result": result, "message": message}
        )


class MpsAigcImageTasksTrigger(_MpsPollingTrigger):
    """
    Poll a batch of MPS AIGC image tasks until every one is ``DONE`` or ``FAIL``, or ``end_time`` passes.

    Each round describes the tasks still unfinished, in order, at most :data:`BATCH_IN_FLIGHT` at a
    time, each spaced by ``rate_limit`` and waiting for its slot at the process's
    ``DescribeAigcImageTask`` limiter of the account, so one trigger for N tasks costs one triggerer
    coroutine.  A round of N tasks takes at least ``N / rate_limit`` seconds; rounds start
    ``poll_interval`` apart or back to back when a round takes longer.

    A task the service does not know gets the status ``NOT_FOUND``; errors that
    :func:`~airflow_provider_mps.core.errors.classify` calls ``RETRY`` leave the task for the next
    round (backing off when a whole round failed); any other error ends the trigger with an
    ``error`` event.

    The trigger fires exactly one event, ``{"status", "mps_task_ids", "results", "message"}``, where
    ``results`` holds, in the order of ``mps_task_ids``, the last describe dict of each task (or
    ``None`` if it was never described) and ``status`` is:

    * ``success`` — every task is ``DONE``, ``FAIL`` or ``NOT_FOUND`` (which ones failed is the
      operator's business);
    * ``timeout`` — ``end_time`` passed first; unfinished tasks carry their last status;
    * ``error`` — an error that is not retried; ``message`` holds its code and RequestId.

    :param mps_task_ids: the MPS TaskIds to wait for.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param poll_interval: seconds between the starts of two polling rounds.
    :param end_time: when to give up, as epoch seconds.
    :param region: the region overriding the connection's, if any.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second this trigger sends.
    """

    own_fields = ("mps_task_ids",)

    def __init__(
        self,
        *,
        mps_task_ids: list[str],
        mps_conn_id: str,
        poll_interval: float,
        end_time: float,
        region: str | None = None,
        rate_limit: float = DEFAULT_RATE,
    ) -> None:
        super().__init__(
            mps_conn_id=mps_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            region=region,
            rate_limit=rate_limit,
        )
        self.mps_task_ids = list(mps_task_ids)

    def _describing(self) -> str:
        return f"each of the {len(self.mps_task_ids)} task(s) of this batch"

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll rounds until every task is final, the deadline passes or an error is not retried."""
        results: dict[str, Result] = {}
        if (cannot := await self._start("tasks")) is not None:
            yield self._event(TriggerEventStatus.ERROR, results, cannot)
            return
        pending = list(dict.fromkeys(self.mps_task_ids))
        failed_rounds = 0
        last_error: MpsError | None = None
        while True:
            started, polled = time.monotonic(), len(pending)
            still: list[str] = []
            retried = 0
            for task_id, outcome in await self._poll_round(pending):
                if isinstance(outcome, dict):
                    results[task_id] = outcome
                    if not is_final(outcome["Status"]):
                        still.append(task_id)
                elif classify(outcome, DESCRIBE_ACTION) is Handling.RETRY:
                    retried, last_error = retried + 1, outcome
                    still.append(task_id)
                else:
                    message = f"Polling MPS task {task_id} failed: {outcome}"
                    yield self._event(TriggerEventStatus.ERROR, results, message)
                    return
            pending = still
            if retried:
                self.log.warning(
                    "%s of %s describe calls failed and are retried; the last: %s",
                    retried,
                    polled,
                    last_error,
                )
            if not pending:
                yield self._event(
                    TriggerEventStatus.SUCCESS, results, f"All {len(results)} MPS tasks finished."
                )
                return
            self.log.info("%s of %s MPS tasks are still running.", len(pending), len(self.mps_task_ids))
            remaining = self.end_time - time.time()
            if remaining <= 0:
                message = (
                    f"{len(pending)} of {len(self.mps_task_ids)} MPS tasks did not finish before "
                    f"{self._deadline()}."
                )
                if last_error is not None and retried:
                    message += f" The last poll failed: {last_error}"
                yield self._event(TriggerEventStatus.TIMEOUT, results, message)
                return
            failed_rounds = failed_rounds + 1 if retried == polled else 0
            delay = (
                self._backoff(failed_rounds)
                if failed_rounds
                else self.poll_interval - (time.monotonic() - started)
            )
            await asyncio.sleep(max(0.0, min(delay, remaining)))

    async def _poll_round(self, task_ids: list[str]) -> list[tuple[str, Result | MpsError]]:
        """
        Describe every task of ``task_ids``, at most :data:`BATCH_IN_FLIGHT` at a time, in order.

        The describes start in order and queue, first come first served, at the hook's own limiter
        (``rate_limit``) and then the process's.  A TaskId the service does not know gets a result
        with the status ``NOT_FOUND``; any other failure is returned as the error.
        """
        in_flight = asyncio.Semaphore(BATCH_IN_FLIGHT)

        async def describe(task_id: str) -> tuple[str, Result | MpsError]:
            try:
                return task_id, await self.hook.adescribe_aigc_image_task(task_id)
            except MpsError as error:
                if classify(error, DESCRIBE_ACTION) is Handling.NOT_FOUND:
                    return task_id, _not_found(task_id, error)
                return task_id, error
            finally:
                in_flight.release()

        calls = []
        for task_id in task_ids:
            await in_flight.acquire()
            calls.append(asyncio.create_task(describe(task_id)))
        return list(await asyncio.gather(*calls))

    def _event(self, status: TriggerEventStatus, results: dict[str, Result], message: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status.value,
                "mps_task_ids": list(self.mps_task_ids),
                "results": [results.get(task_id) for task_id in self.mps_task_ids],
                "message": message,
            }
        )


def _not_found(task_id: str, error: MpsError) -> Result:
    return {
        "TaskId": task_id,
        "Status": LocalStatus.NOT_FOUND.value,
        "ImageUrls": [],
        "Message": str(getattr(error, "message", error)),
        "RequestId": getattr(error, "request_id", None),
        "Code": getattr(error, "code", None),
    }


def run_trigger(trigger: BaseTrigger) -> dict[str, Any]:
    """
    Run ``trigger`` in this process until its first event, and return the event's payload.

    How a worker waits without deferring: the same loop the triggerer would run, on an event loop
    of its own, the trigger's client closed at the end.

    :param trigger: an :class:`MpsAigcImageTaskTrigger` or :class:`MpsAigcImageTasksTrigger`.
    """

    async def first() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return dict(event.payload)
        finally:
            await trigger.cleanup()
        raise MpsError(f"{type(trigger).__name__} ended without an event.")

    return asyncio.run(first())
