"""
Deferrable waiting for an MPS AIGC image task, and the check every ``execute_complete`` runs.

:class:`MpsAigcImageTaskTrigger` polls ``DescribeAigcImageTask`` from the triggerer and fires
exactly one event; :func:`validate_trigger_event` turns that event back into a result (or an
exception) when the task resumes on a worker.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mps.exceptions import (
    MpsError,
    MpsTaskFailedError,
    MpsTaskTimeoutError,
    MpsTransientError,
)
from airflow_provider_mps.utils.rate_limit import DEFAULT_RATE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_mps.hooks.mps import MpsHook

#: The action every poll calls; its quota is shared by all triggers using the same credentials.
DESCRIBE_ACTION = "DescribeAigcImageTask"

#: The statuses a trigger event can carry; anything else is rejected on resume.
EVENT_STATUSES = frozenset({"success", "failed", "timeout", "error"})

#: Longest pause between two attempts after transient errors, in seconds (unless polling is slower).
MAX_BACKOFF_SECONDS = 60.0
#: Shortest backoff base, in seconds, so a zero ``poll_interval`` cannot spin on errors.
MIN_BACKOFF_SECONDS = 0.05


class MpsAigcImageTaskTrigger(BaseTrigger):
    """
    Poll an MPS AIGC image task until it is ``DONE`` or ``FAIL``, or ``end_time`` passes.

    Every poll goes through the hook's request path, which waits at the process's
    ``DescribeAigcImageTask`` limiter of the connection's account and endpoint: all triggers of one
    triggerer process sharing credentials stay under the process's share of the quota
    (``[tencentcloud_mps] quota_share``) together.  ``rate_limit`` only spaces this trigger's own
    polls.  Quota, service-side and network errors are retried with exponential backoff and jitter
    until ``end_time``; any other error ends the trigger with an ``error`` event.

    The trigger fires exactly one event, with the payload
    ``{"status", "mps_task_id", "result", "message"}`` where ``status`` is one of:

    * ``success`` — the task is ``DONE``; ``result`` is the describe dict with ``ImageUrls``;
    * ``failed`` — the task is ``FAIL``; ``message`` is the service's ``Message`` and ``result``
      the describe dict (with its ``RequestId``);
    * ``timeout`` — ``end_time`` passed first; ``result`` is the last describe dict, if any;
    * ``error`` — a non-transient API error; ``message`` holds its code and RequestId.

    MPS has no call to cancel an AIGC task: when the deferred Airflow task is killed, the MPS task
    keeps running (and is billed) on the service; :meth:`on_kill` only logs this.

    :param mps_task_id: the MPS TaskId to wait for.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param poll_interval: seconds between two polls of a task that is still running.
    :param end_time: when to give up, as epoch seconds.
    :param region: the region overriding the connection's, if any.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second this trigger sends (its
        own spacing; the process's share of the account quota applies to all triggers together).
    """

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
        super().__init__()
        self.mps_task_id = mps_task_id
        self.mps_conn_id = mps_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.region = region
        self.rate_limit = float(rate_limit)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and every constructor argument, JSON-safe."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mps_task_id": self.mps_task_id,
                "mps_conn_id": self.mps_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "region": self.region,
                "rate_limit": self.rate_limit,
            },
        )

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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the task is terminal, the deadline passes or a hard error occurs."""
        try:
            # The hook is built in a worker thread (the first import of its module in a triggerer
            # takes tens of milliseconds), the connection read asynchronously (a sync lookup on the
            # event loop fails on 3.0), and the (shared) SDK client built before the first poll.
            await asyncio.to_thread(lambda: self.hook)
            await self.hook.aget_conn()
        except Exception as error:  # a missing or unusable connection: nothing to retry
            yield self._event(
                "error", None, f"Cannot poll MPS task {self.mps_task_id} with {self.mps_conn_id!r}: {error}"
            )
            return

        last: dict[str, Any] | None = None
        last_error: MpsTransientError | None = None
        failures = 0
        while True:
            delay = self.poll_interval
            try:
                last = await self.hook.adescribe_aigc_image_task(self.mps_task_id)
            except MpsTransientError as error:
                last_error = error
                failures += 1
                delay = self._backoff(failures)
                self.log.warning(
                    "Polling MPS task %s failed (attempt %s), retrying in %.1f s: %s",
                    self.mps_task_id,
                    failures,
                    delay,
                    error,
                )
            except MpsError as error:
                yield self._event("error", None, f"Polling MPS task {self.mps_task_id} failed: {error}")
                return
            else:
                failures, last_error = 0, None
                event = self._event_for(last)
                if event is not None:
                    yield event
                    return
                self.log.info("MPS task %s is %s", self.mps_task_id, last.get("Status"))

            remaining = self.end_time - time.time()
            if remaining <= 0:
                yield self._timeout_event(last, last_error)
                return
            await asyncio.sleep(min(delay, remaining))

    def _event_for(self, result: dict[str, Any]) -> TriggerEvent | None:
        from airflow_provider_mps.hooks.mps import MpsAigcImageTaskStatus

        status = result.get("Status")
        if status == MpsAigcImageTaskStatus.DONE.value:
            return self._event("success", result, f"MPS task {self.mps_task_id} is DONE.")
        if status == MpsAigcImageTaskStatus.FAIL.value:
            return self._event("failed", result, result.get("Message") or "The service gave no message.")
        return None

    def _timeout_event(self, last: dict[str, Any] | None, error: MpsTransientError | None) -> TriggerEvent:
        deadline = datetime.fromtimestamp(self.end_time, tz=timezone.utc).isoformat()
        status = last.get("Status") if last else "unknown"
        message = (
            f"MPS task {self.mps_task_id} did not finish before {deadline}; its last status was {status}."
        )
        if error is not None:
            message += f" The last poll failed: {error}"
        return self._event("timeout", last, message)

    def _event(self, status: str, result: dict[str, Any] | None, message: str) -> TriggerEvent:
        return TriggerEvent(
            {"status": status, "mps_task_id": self.mps_task_id, "result": result, "message": message}
        )

    def _backoff(self, failures: int) -> float:
        """
        Seconds to wait after ``failures`` transient errors in a row.

        Exponential from ``poll_interval`` (doubling per failure, capped at
        ``max(MAX_BACKOFF_SECONDS, poll_interval)``), with equal jitter: a random point in the
        upper half, so triggers that failed together do not retry together.
        """
        base = max(self.poll_interval, MIN_BACKOFF_SECONDS)
        ceiling = min(max(MAX_BACKOFF_SECONDS, base), base * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def cleanup(self) -> None:
        """Release the hook's SDK client (closed once no trigger uses it); the MPS task is left alone."""
        if "hook" in self.__dict__:
            await self.hook.aclose()

    async def on_kill(self) -> None:
        """
        Log that the MPS task keeps running: the service offers no call to cancel it.

        Airflow calls this when a user marks the deferred task failed or successful, or clears it.
        """
        self.log.warning(
            "MPS has no API to cancel AIGC image task %s; it keeps running (and is billed) on the "
            "service. Only the Airflow task was stopped.",
            self.mps_task_id,
        )


def validate_trigger_event(event: dict[str, Any] | None, *, mps_task_id: str | None = None) -> dict[str, Any]:
    """
    Check an event of :class:`MpsAigcImageTaskTrigger` and return the finished task's result.

    Never assumes success: only a well-formed ``success`` event for the expected task passes.

    :param event: the event payload handed to ``execute_complete``.
    :param mps_task_id: the TaskId the caller waited for; checked against the event's when given.
    :return: the describe dict of the ``DONE`` task (``TaskId``, ``Status``, ``ImageUrls``, ...).
    :raises MpsTaskFailedError: the task ended in ``FAIL``.
    :raises MpsTaskTimeoutError: the deadline passed first.
    :raises MpsError: an error event, or an event that is missing, malformed or for another task.
    """
    if not isinstance(event, dict):
        raise MpsError(f"The trigger event must be a dict from MpsAigcImageTaskTrigger, got {event!r}.")
    status = event.get("status")
    if status not in EVENT_STATUSES:
        raise MpsError(
            f"The trigger event status {status!r} is not one of {sorted(EVENT_STATUSES)}; event: {event!r}."
        )
    event_task_id = event.get("mps_task_id")
    if not isinstance(event_task_id, str) or not event_task_id:
        raise MpsError(f"The trigger event carries no MPS TaskId; event: {event!r}.")
    if mps_task_id is not None and event_task_id != mps_task_id:
        raise MpsError(
            f"The trigger event is for MPS task {event_task_id!r}, but the task waited for {mps_task_id!r}."
        )
    result = event.get("result")
    message = event.get("message")
    if status == "failed":
        request_id = result.get("RequestId") if isinstance(result, dict) else None
        raise MpsTaskFailedError(event_task_id, message, request_id)
    if status == "timeout":
        raise MpsTaskTimeoutError(message or f"Waiting for MPS task {event_task_id} timed out.")
    if status == "error":
        raise MpsError(message or f"Waiting for MPS task {event_task_id} failed with no message.")
    if not isinstance(result, dict) or not isinstance(result.get("ImageUrls"), list):
        raise MpsError(
            f"The success event for MPS task {event_task_id} has no ImageUrls list; event: {event!r}."
        )
    from airflow_provider_mps.hooks.mps import MpsAigcImageTaskStatus

    if result.get("Status") != MpsAigcImageTaskStatus.DONE.value:
        raise MpsError(
            f"The success event for MPS task {event_task_id} reports status "
            f"{result.get('Status')!r}, not DONE."
        )
    return result


#: Describe calls one batch trigger keeps in flight at once (each still waits for its limiter slot).
BATCH_IN_FLIGHT = 10

#: ``Status`` given to a task the service does not know (never an MPS status).
NOT_FOUND_STATUS = "NOT_FOUND"

#: Statuses after which a batch trigger stops polling a task.
_BATCH_FINAL_STATUSES = frozenset({"DONE", "FAIL", NOT_FOUND_STATUS})


class MpsAigcImageTasksTrigger(BaseTrigger):
    """
    Poll a batch of MPS AIGC image tasks until every one is ``DONE`` or ``FAIL``, or ``end_time`` passes.

    Each round describes the tasks still unfinished, in order, at most :data:`BATCH_IN_FLIGHT` at a
    time, each spaced by ``rate_limit`` and waiting for its slot at the process's
    ``DescribeAigcImageTask`` limiter of the account (shared with every other trigger of the
    account, at ``[tencentcloud_mps] quota_share``), so one trigger for N tasks costs one triggerer
    coroutine.  A round of N tasks takes at least ``N / rate_limit`` seconds; rounds start
    ``poll_interval`` apart or back to back when a round takes longer.

    A task the service does not know gets the status ``NOT_FOUND``; quota, service-side and network
    errors leave the task for the next round (backing off when a whole round failed); any other
    error ends the trigger with an ``error`` event.

    The trigger fires exactly one event, ``{"status", "mps_task_ids", "results", "message"}``, where
    ``results`` holds, in the order of ``mps_task_ids``, the last describe dict of each task (or
    ``None`` if it was never described) and ``status`` is:

    * ``success`` — every task is ``DONE``, ``FAIL`` or ``NOT_FOUND`` (which ones failed is the
      operator's business);
    * ``timeout`` — ``end_time`` passed first; unfinished tasks carry their last status;
    * ``error`` — a non-transient API error; ``message`` holds its code and RequestId.

    :param mps_task_ids: the MPS TaskIds to wait for.
    :param mps_conn_id: the Airflow connection to Tencent Cloud MPS.
    :param poll_interval: seconds between the starts of two polling rounds.
    :param end_time: when to give up, as epoch seconds.
    :param region: the region overriding the connection's, if any.
    :param rate_limit: the most ``DescribeAigcImageTask`` calls per second this trigger sends (its
        own spacing; the process's share of the account quota applies to all triggers together).
    """

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
        super().__init__()
        self.mps_task_ids = list(mps_task_ids)
        self.mps_conn_id = mps_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = float(end_time)
        self.region = region
        self.rate_limit = float(rate_limit)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and every constructor argument, JSON-safe."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mps_task_ids": list(self.mps_task_ids),
                "mps_conn_id": self.mps_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "region": self.region,
                "rate_limit": self.rate_limit,
            },
        )

    @cached_property
    def hook(self) -> MpsHook:
        """The hook polling the service, its own retries off (see :class:`MpsAigcImageTaskTrigger`)."""
        from airflow_provider_mps.hooks.mps import MpsHook

        return MpsHook(
            mps_conn_id=self.mps_conn_id, region=self.region, retry_limit=0, rate_limit=self.rate_limit
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll rounds until every task is final, the deadline passes or a hard error occurs."""
        try:
            # The hook, the connection and the client first (see MpsAigcImageTaskTrigger.run).
            await asyncio.to_thread(lambda: self.hook)
            await self.hook.aget_conn()
        except Exception as error:  # a missing or unusable connection: nothing to retry
            yield self._event("error", {}, f"Cannot poll MPS tasks with {self.mps_conn_id!r}: {error}")
            return
        results: dict[str, dict[str, Any]] = {}
        pending = list(dict.fromkeys(self.mps_task_ids))
        failed_rounds = 0
        last_error: MpsTransientError | None = None
        while True:
            started, polled = time.monotonic(), len(pending)
            still: list[str] = []
            transient = 0
            for task_id, result, failure in await self._poll_round(pending):
                if result is not None:
                    results[task_id] = result
                    if result["Status"] not in _BATCH_FINAL_STATUSES:
                        still.append(task_id)
                elif isinstance(failure, MpsTransientError):
                    transient += 1
                    last_error = failure
                    still.append(task_id)
                else:
                    yield self._event("error", results, f"Polling MPS task {task_id} failed: {failure}")
                    return
            pending = still
            if transient:
                self.log.warning(
                    "%s of %s describe calls failed transiently and are retried; the last: %s",
                    transient,
                    polled,
                    last_error,
                )
            if not pending:
                yield self._event("success", results, f"All {len(results)} MPS tasks finished.")
                return
            self.log.info("%s of %s MPS tasks are still running.", len(pending), len(self.mps_task_ids))
            remaining = self.end_time - time.time()
            if remaining <= 0:
                message = (
                    f"{len(pending)} of {len(self.mps_task_ids)} MPS tasks did not finish before "
                    f"{datetime.fromtimestamp(self.end_time, tz=timezone.utc).isoformat()}."
                )
                if last_error is not None and transient:
                    message += f" The last poll failed: {last_error}"
                yield self._event("timeout", results, message)
                return
            failed_rounds = failed_rounds + 1 if transient == polled else 0
            delay = self.poll_interval - (time.monotonic() - started)
            if failed_rounds:
                # The single-task trigger's backoff: from the poll interval, doubling, with jitter.
                base = max(self.poll_interval, MIN_BACKOFF_SECONDS)
                ceiling = min(max(MAX_BACKOFF_SECONDS, base), base * 2 ** (failed_rounds - 1))
                delay = ceiling / 2 + random.uniform(0, ceiling / 2)
            await asyncio.sleep(max(0.0, min(delay, remaining)))

    async def _poll_round(
        self, task_ids: list[str]
    ) -> list[tuple[str, dict[str, Any] | None, MpsError | None]]:
        """
        Describe every task of ``task_ids``, at most :data:`BATCH_IN_FLIGHT` at a time, in order.

        The describes start in order and queue, first come first served, at the hook's own limiter
        (``rate_limit``) and then the process's, each of which lets a call through only once its
        interval has passed since the previous one went through, even after the event loop stalled.
        """
        in_flight = asyncio.Semaphore(BATCH_IN_FLIGHT)

        async def describe(task_id: str) -> tuple[str, dict[str, Any] | None, MpsError | None]:
            try:
                return task_id, await self.hook.adescribe_aigc_image_task(task_id), None
            except MpsError as error:
                if getattr(error, "code", "").startswith("ResourceNotFound"):
                    return task_id, _not_found(task_id, error), None
                return task_id, None, error
            finally:
                in_flight.release()

        calls = []
        for task_id in task_ids:
            await in_flight.acquire()
            calls.append(asyncio.create_task(describe(task_id)))
        return list(await asyncio.gather(*calls))

    def _event(self, status: str, results: dict[str, dict[str, Any]], message: str) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "mps_task_ids": list(self.mps_task_ids),
                "results": [results.get(task_id) for task_id in self.mps_task_ids],
                "message": message,
            }
        )

    async def cleanup(self) -> None:
        """Release the hook's SDK client (closed once unused); the MPS tasks themselves are left alone."""
        if "hook" in self.__dict__:
            await self.hook.aclose()

    async def on_kill(self) -> None:
        """Log that the MPS tasks keep running: the service offers no call to cancel them."""
        self.log.warning(
            "MPS has no API to cancel AIGC image tasks; the %s task(s) of this batch keep running (and "
            "are billed) on the service. Only the Airflow task was stopped.",
            len(self.mps_task_ids),
        )


def _not_found(task_id: str, error: MpsError) -> dict[str, Any]:
    return {
        "TaskId": task_id,
        "Status": NOT_FOUND_STATUS,
        "ImageUrls": [],
        "Message": str(getattr(error, "message", error)),
        "RequestId": getattr(error, "request_id", None),
        "Code": getattr(error, "code", None),
    }


def validate_tasks_trigger_event(
    event: dict[str, Any] | None, *, mps_task_ids: list[str] | None = None
) -> dict[str, Any]:
    """
    Check an event of :class:`MpsAigcImageTasksTrigger` and return what it says of each task.

    :param event: the event payload handed to ``execute_complete``.
    :param mps_task_ids: the TaskIds the caller waited for, in order; checked against the event's.
    :return: ``{"status": "success" | "timeout", "results": {TaskId: describe dict or None},
        "message"}``; after ``success`` every result is ``DONE``, ``FAIL`` or ``NOT_FOUND``.
    :raises MpsError: an ``error`` event, or an event that is missing, malformed or for other tasks.
    """
    if not isinstance(event, dict):
        raise MpsError(f"The trigger event must be a dict from MpsAigcImageTasksTrigger, got {event!r:.200}.")
    status = event.get("status")
    if status not in ("success", "timeout", "error"):
        raise MpsError(
            f"The batch trigger event status {status!r} is not one of error, success, timeout; "
            f"event: {event!r:.300}."
        )
    task_ids, results = event.get("mps_task_ids"), event.get("results")
    if (
        not isinstance(task_ids, list)
        or not isinstance(results, list)
        or len(task_ids) != len(results)
        or not all(isinstance(task_id, str) and task_id for task_id in task_ids)
    ):
        raise MpsError(
            f"The batch trigger event must carry mps_task_ids and one result per task; event: {event!r:.300}."
        )
    if mps_task_ids is not None and task_ids != list(mps_task_ids):
        raise MpsError(
            f"The batch trigger event is for {len(task_ids)} MPS task(s) that are not the "
            f"{len(mps_task_ids)} task(s) waited for."
        )
    message = str(event.get("message") or "")
    if status == "error":
        raise MpsError(message or "Waiting for the MPS tasks failed with no message.")
    by_id: dict[str, Any] = {}
    for task_id, result in zip(task_ids, results, strict=True):
        final = isinstance(result, dict) and result.get("Status") in _BATCH_FINAL_STATUSES
        if status == "success" and not final:
            raise MpsError(
                f"The success event reports MPS task {task_id} as {result!r:.200}, "
                "not DONE, FAIL or NOT_FOUND."
            )
        if result is not None and not isinstance(result, dict):
            raise MpsError(
                f"The batch trigger event's result for MPS task {task_id} is not a dict: {result!r:.200}."
            )
        by_id[task_id] = result
    return {"status": status, "results": by_id, "message": message}
