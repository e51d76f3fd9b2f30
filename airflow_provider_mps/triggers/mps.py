"""
Deferrable waiting for MPS AIGC image tasks: the provider's one wait loop.

:class:`MpsAigcImageTaskTrigger` waits for one task, :class:`MpsAigcImageBatchTrigger` for a
batch; both poll ``DescribeAigcImageTask`` through the hook's request path and fire exactly one
event.  A worker that waits without deferring runs the same trigger in-process
(:func:`run_trigger`), so the operators, the sensor's callers and :meth:`MpsHook.wait_for_aigc_image_task`
all wait the same way.  The events are checked on resume by :mod:`~airflow_provider_mps.triggers._events`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from airflow_provider_mps.core.api import DESCRIBE_ACTION
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.core.retry import MIN_REQUEST_TIMEOUT
from airflow_provider_mps.core.status import LocalStatus, TriggerEventStatus, is_done, is_failed, is_final
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.triggers._events import validate_batch_trigger_event, validate_trigger_event
from airflow_provider_mps.triggers._polling import (
    BATCH_IN_FLIGHT,
    NO_DEADLINE_SECONDS,
    MpsPollingTrigger,
    end_time_after,
    run_trigger,
)
from airflow_provider_mps.utils.rate_limit import DEFAULT_RATE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


#: One task's describe result, as the hook returns it.
Result = dict[str, Any]

__all__ = [
    "NO_DEADLINE_SECONDS",
    "MpsAigcImageTaskTrigger",
    "MpsAigcImageBatchTrigger",
    "end_time_after",
    "run_trigger",
    "validate_batch_trigger_event",
    "validate_trigger_event",
    "wait_in_process",
]


class MpsAigcImageTaskTrigger(MpsPollingTrigger):
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

    def __init__(self, *, mps_task_id: str, **polling: Any) -> None:
        super().__init__(**polling)
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


class MpsAigcImageBatchTrigger(MpsPollingTrigger):
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

    def __init__(self, *, mps_task_ids: list[str], **polling: Any) -> None:
        super().__init__(**polling)
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


def wait_in_process(hook: Any, mps_task_id: str, poll_interval: float, timeout: float | None) -> Result:
    """
    Wait for one task in this process with :class:`MpsAigcImageTaskTrigger`; return its ``DONE`` result.

    :meth:`MpsHook.wait_for_aigc_image_task`'s loop: the same trigger a deferred task runs.

    :param hook: the hook whose connection, region and rate limit the trigger uses.
    :param mps_task_id: the checked MPS TaskId.
    :param poll_interval: seconds between two describe calls.
    :param timeout: seconds to wait in all, or ``None`` for no limit.
    :raises MpsTaskFailedError: when the task ends in ``FAIL``.
    :raises MpsTaskTimeoutError: when ``timeout`` passes first.
    """
    trigger = MpsAigcImageTaskTrigger(
        mps_task_id=mps_task_id,
        mps_conn_id=hook.mps_conn_id,
        poll_interval=poll_interval,
        end_time=end_time_after(timeout),
        region=hook.region,
        rate_limit=hook.rate_limit or DEFAULT_RATE,
    )
    return validate_trigger_event(run_trigger(trigger), mps_task_id=mps_task_id)
