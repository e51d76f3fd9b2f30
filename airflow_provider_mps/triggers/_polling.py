"""
What both MPS polling triggers share: their arguments, hook, start, backoff, cleanup and kill notice.

Also how a worker waits without deferring (:func:`run_trigger`) and the deadline of a wait
(:func:`end_time_after`).  The triggers themselves are in :mod:`airflow_provider_mps.triggers.mps`.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time
import weakref
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger

from airflow_provider_mps.core.retry import backoff_delay
from airflow_provider_mps.exceptions import MpsError
from airflow_provider_mps.utils.rate_limit import DEFAULT_RATE

if TYPE_CHECKING:
    from airflow_provider_mps.hooks.mps import MpsHook

#: Longest pause between two attempts after transient errors, in seconds (unless polling is slower).
MAX_BACKOFF_SECONDS = 60.0
#: Shortest backoff base, in seconds, so a zero ``poll_interval`` cannot spin on errors.
MIN_BACKOFF_SECONDS = 0.05
#: With no timeout a trigger still needs an ``end_time``: a year, effectively none.
NO_DEADLINE_SECONDS = 365 * 24 * 3600.0
#: Describe calls one batch trigger keeps in flight at once (each still waits for its limiter slot).
BATCH_IN_FLIGHT = 10
#: Triggers of one event loop starting at once (see :meth:`MpsPollingTrigger._start`).
STARTS_AT_ONCE = 8

_HOOK_MODULE = "airflow_provider_mps.hooks.mps"
_start_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _start_gate() -> asyncio.Semaphore:
    """The running loop's gate of trigger starts (a loop's own: a semaphore binds to one loop)."""
    loop = asyncio.get_running_loop()
    gate = _start_gates.get(loop)
    if gate is None:
        gate = _start_gates[loop] = asyncio.Semaphore(STARTS_AT_ONCE)
    return gate


def end_time_after(timeout: float | None) -> float:
    """The ``end_time`` of a trigger waiting ``timeout`` seconds from now (``None``: effectively for ever)."""
    return time.time() + (NO_DEADLINE_SECONDS if timeout is None else timeout)


class MpsPollingTrigger(BaseTrigger):
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
        Build the hook, read the connection and get the shared SDK client, a few triggers at a time.

        A triggerer may start thousands of triggers at once.  Each start passes a per-loop gate
        (:data:`STARTS_AT_ONCE` at a time), so the starts are spread over many turns of the event
        loop instead of all running in one turn and holding the loop.  The hook reads the
        connection once for all the triggers of a connection starting together
        (:mod:`~airflow_provider_mps.hooks._shared_reads`).  The first import of the hook's module
        takes tens of milliseconds: it runs in a worker thread.  Return why polling cannot start, or
        ``None``.

        :param polled: what is polled, named in the reason (``task <TaskId>``, ``tasks``).
        """
        async with _start_gate():
            try:
                if _HOOK_MODULE not in sys.modules:
                    await asyncio.to_thread(importlib.import_module, _HOOK_MODULE)
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


def run_trigger(trigger: BaseTrigger) -> dict[str, Any]:
    """
    Run ``trigger`` in this process until its first event, and return the event's payload.

    How a worker waits without deferring: the same loop the triggerer would run, on an event loop
    of its own, the trigger's client closed at the end.

    :param trigger: an :class:`MpsAigcImageTaskTrigger` or :class:`MpsAigcImageBatchTrigger`.
    """

    async def first() -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return dict(event.payload)
        finally:
            await trigger.cleanup()
        raise MpsError(f"{type(trigger).__name__} ended without an event.")

    return asyncio.run(first())
