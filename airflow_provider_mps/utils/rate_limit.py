"""
Client-side rate limiters: the process's share of the account quota, and a caller's own spacing.

The MPS API allows 20 requests per second per action and account, whatever process sends them.
Every request the hook sends, sync or async, create or describe, first waits at the limiter of
its ``(account, action)`` in this process (:func:`process_rate_limiter`): a thousand triggers of
one triggerer polling ``DescribeAigcImageTask``, a batch creating from a thread pool, a sensor
poking and a task waiting on a worker all draw from the same one.  Its rate is this process's
share of the quota, set in one place for the deployment: ``[tencentcloud_mps] quota_share`` in
Airflow's configuration (:func:`quota_share`; 20, the whole quota, when unset).  With several
processes sharing an account, give each ``20 / number of processes`` (``docs/connection.md``).
Nothing a task asks for changes it: a task's ``rate_limit`` only spaces that task's own calls, on
a :class:`RateLimiter` of its own.

Callers wait in one first-come, first-served queue.  Only the caller at its head waits on a clock:
it goes through once ``interval`` has passed since the previous caller *went through* (not since
that caller's planned time), then hands the head to the next caller.  Two calls are therefore
never closer than ``interval``, even after the event loop or a thread stalled: slots missed during
a stall are lost, never made up for in a burst.  The interval keeps :data:`HEADROOM` below the
rate, so jitter between a call leaving and reaching the service does not push two calls of one
second's quota into the same second at the service.

The queue holds threads (woken through a :class:`threading.Event`) and coroutines of any event
loop (woken through ``call_soon_threadsafe``), so one limiter serves all of them at once.

**Shared mode.** When ``[tencentcloud_mps] quota_storage_uri`` names a storage of the ``limits``
library (the deployment's Redis, say), every process draws from one account-wide budget instead:
the limiter holds a :class:`~airflow_provider_mps.utils.shared_quota.SharedQuotaWindow`, and the
head of its queue also takes a slot of that budget's moving window before it goes through
(:mod:`airflow_provider_mps.utils.shared_quota`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import threading
import time
from typing import TYPE_CHECKING, Protocol

from airflow_provider_mps import CONFIG_SECTION, SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.utils.shared_quota import SharedQuotaWindow, clear_storages, quota_storage_uri

if TYPE_CHECKING:
    from collections.abc import Generator

log = logging.getLogger(__name__)

#: The documented MPS quota of every AIGC action, in requests per second.
DEFAULT_RATE = SERVICE_QUOTA_PER_SECOND

#: Requests per second, per action and account, one process may send.
QUOTA_SHARE_OPTION = "quota_share"

#: Share of the rate kept unused: calls are spaced ``1 / (rate * (1 - HEADROOM))`` seconds apart.
#: At 20/s that is 1/18 s: 21 calls span 1.11 s, so no 1-second window at the service holds more
#: than 20 unless their delays on the way differ by over 110 ms (at 5 % the margin was 53 ms, which
#: 500 triggers in one event loop on a busy 2-core machine exceeded: tests/load, heavy).
HEADROOM = 0.10

#: Actions that keep a smaller share unused.  A create refused for quota created nothing and is
#: retried safely, while a batch's wall time is bound by the create rate: at 2.5 % a 600-item
#: batch stays within 1.05x of the quota's bound (``bench/RESULTS.md``), at 5 % it cannot.
ACTION_HEADROOM: dict[str, float] = {"CreateAigcImageTask": 0.025}


class _Step(enum.Enum):
    """A wait a caller makes in :meth:`RateLimiter._turn`, other than sleeping a number of seconds."""

    #: Another caller holds the head of the queue: wait until woken.
    WOKEN = "woken"
    #: At the head, with the interval passed: take a slot of the window, send back the seconds to wait.
    SLOT = "slot"


class _Waiter(Protocol):
    def wake(self) -> bool:
        """Wake the waiter; return ``False`` if it can never run again (its loop is closed)."""
        ...


class _ThreadWaiter:
    """A thread waiting in the queue; woken when it reaches the head."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def wake(self) -> bool:
        self.event.set()
        return True


class _LoopWaiter:
    """A coroutine waiting in the queue; woken (from any thread) when it reaches the head."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def wake(self) -> bool:
        try:
            self.loop.call_soon_threadsafe(self._set)
        except RuntimeError:  # its loop is closed: nobody waits for this wake-up any more
            return False
        return True

    def _set(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class RateLimiter:
    """
    Let calls through one at a time, at least ``1 / (rate * (1 - headroom))`` seconds apart.

    :param rate: the most calls allowed per second; must be positive.
    :param headroom: the share of ``rate`` kept unused, to absorb network jitter.
    :param window: the account-wide window every call also takes a slot of (the shared mode), or
        ``None`` for this process's spacing alone.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        *,
        headroom: float = HEADROOM,
        window: SharedQuotaWindow | None = None,
    ) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._last_grant = float("-inf")
        self._queue: collections.deque[_Waiter] = collections.deque()
        self._headroom = headroom
        self._interval = _interval(rate, headroom)
        self._rate = float(rate)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate:g}, headroom={self._headroom:g}, window={self._window!r})"

    @property
    def rate(self) -> float:
        """The most calls allowed per second."""
        return self._rate

    @property
    def interval(self) -> float:
        """The shortest time between two calls, in seconds (the rate less the headroom)."""
        return self._interval

    @property
    def window(self) -> SharedQuotaWindow | None:
        """The account-wide window every call also takes a slot of, or ``None`` (per-process mode)."""
        return self._window

    @property
    def budget(self) -> int | None:
        """The calls per second the whole deployment may send through the window, or ``None``."""
        return None if self._window is None else self._window.budget

    # -- the queue (each step under the lock; waking happens outside it) --------------------------

    def _enter(self, waiter: _Waiter) -> bool:
        """
        Go through at once if nobody waits and the interval has passed; else join the queue.

        With a window every caller queues, so only the head of the queue ever asks the window.
        """
        with self._lock:
            now = time.monotonic()
            if self._window is None and not self._queue and now >= self._last_grant + self._interval:
                self._last_grant = now
                return True
            self._queue.append(waiter)
            return False

    def _head_delay(self, waiter: _Waiter) -> float | None:
        """Seconds until ``waiter`` may go through, or ``None`` when it is not at the head yet."""
        with self._lock:
            if not self._queue or self._queue[0] is not waiter:
                return None
            return self._last_grant + self._interval - time.monotonic()

    def _grant(self, waiter: _Waiter) -> bool:
        """Let the head ``waiter`` through if its time has come, and wake the next one."""
        with self._lock:
            now = time.monotonic()
            if now < self._last_grant + self._interval:
                return False
            self._last_grant = now
            self._queue.popleft()
            following = self._queue[0] if self._queue else None
        self._wake(following)
        return True

    def _leave(self, waiter: _Waiter) -> None:
        """Remove a waiter that gave up (cancelled); hand the head on if it held it."""
        with self._lock:
            was_head = bool(self._queue) and self._queue[0] is waiter
            try:
                self._queue.remove(waiter)
            except ValueError:
                return
            following = self._queue[0] if was_head and self._queue else None
        self._wake(following)

    def _wake(self, head: _Waiter | None) -> None:
        """Wake the new ``head``; skip waiters whose event loop has closed."""
        while head is not None and not head.wake():
            with self._lock:
                if self._queue and self._queue[0] is head:
                    self._queue.popleft()
                head = self._queue[0] if self._queue else None

    def _next_slot(self) -> float:
        """
        Take the head's slot of the window, if any; return 0, or the seconds to wait before asking again.

        Only the head of the queue calls it, once its interval has passed.  It may block on I/O.
        """
        return 0.0 if self._window is None else self._window.take()

    async def _anext_slot(self) -> float:
        """Async :meth:`_next_slot`: the window's storage is asked in a worker thread."""
        if self._window is None:
            return 0.0
        return await asyncio.to_thread(self._window.take)

    def _turn(self, waiter: _Waiter) -> Generator[_Step | float, float, None]:
        """
        Take ``waiter`` through the queue: the steps of :meth:`acquire` and :meth:`aacquire`, not their waits.

        Each ``yield`` is a wait for the caller to make: :attr:`_Step.WOKEN` until the waiter is
        woken, a number of seconds to sleep, or :attr:`_Step.SLOT`, after which the caller sends
        back what the window said (:meth:`_next_slot`; ``0.0`` after any other wait).  It returns
        when the waiter goes through; closed before then (its caller failed or was cancelled while
        waiting), it takes the waiter out of the queue.
        """
        if self._enter(waiter):
            return
        try:
            while True:
                delay = self._head_delay(waiter)
                if delay is None:
                    yield _Step.WOKEN
                elif delay > 0:
                    yield delay
                else:
                    wait = yield _Step.SLOT
                    if wait > 0:
                        yield wait
                    elif self._grant(waiter):
                        return
        except BaseException:  # GeneratorExit included: the caller gave up
            self._leave(waiter)
            raise

    # -- public ---------------------------------------------------------------------------------

    def acquire(self) -> None:
        """Block the calling thread until the caller may send its request."""
        waiter = _ThreadWaiter()
        with contextlib.closing(self._turn(waiter)) as turn:
            step = next(turn, None)
            while step is not None:
                answer = 0.0
                if step is _Step.WOKEN:
                    waiter.event.wait()
                    waiter.event.clear()
                elif step is _Step.SLOT:
                    answer = self._next_slot()
                else:
                    time.sleep(step)
                step = _resume(turn, answer)

    async def aacquire(self) -> None:
        """Wait, without blocking the event loop, until the caller may send its request."""
        waiter = _LoopWaiter(asyncio.get_running_loop())
        with contextlib.closing(self._turn(waiter)) as turn:
            step = next(turn, None)
            while step is not None:
                answer = 0.0
                if step is _Step.WOKEN:
                    await waiter.future
                    waiter.future = waiter.loop.create_future()
                elif step is _Step.SLOT:
                    answer = await self._anext_slot()
                else:
                    await asyncio.sleep(step)
                step = _resume(turn, answer)


def _resume(turn: Generator[_Step | float, float, None], answer: float) -> _Step | float | None:
    """Send ``answer`` to a :meth:`RateLimiter._turn`; return its next step, or ``None`` once through."""
    try:
        return turn.send(answer)
    except StopIteration:
        return None


def _interval(rate: float, headroom: float = HEADROOM) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"The rate limit must be a positive number of requests per second, got {rate!r}.")
    return 1.0 / (float(rate) * (1.0 - headroom))


def headroom_for(action: str) -> float:
    """The share of the rate kept unused for ``action`` (:data:`ACTION_HEADROOM`, else :data:`HEADROOM`)."""
    return ACTION_HEADROOM.get(action, HEADROOM)


def quota_share() -> float:
    """
    Return ``[tencentcloud_mps] quota_share``: the requests per second this process may send.

    It applies to each action and account separately (the service's quota is per action).  Unset
    or empty means :data:`DEFAULT_RATE`, the whole quota, right for one process per account.  Set it
    per process type with ``AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE`` where workers and triggerers
    need different shares.

    :raises MpsInvalidParameterError: when it is not a number of requests per second above 0.
    """
    from airflow.providers.common.compat.sdk import conf

    from airflow_provider_mps.exceptions import MpsInvalidParameterError

    value = conf.get(CONFIG_SECTION, QUOTA_SHARE_OPTION, fallback=None)
    if value is None or not str(value).strip():
        return float(DEFAULT_RATE)
    try:
        share = float(value)
    except ValueError:
        share = float("nan")
    if not 0 < share < float("inf"):
        raise MpsInvalidParameterError(
            f"[{CONFIG_SECTION}] {QUOTA_SHARE_OPTION}",
            "must be a number of requests per second greater than 0, such as 5 "
            f"(the account's quota of {DEFAULT_RATE:g} divided among the processes sharing it).",
            value,
        )
    return share


_registry: dict[tuple[str, str], RateLimiter] = {}
_registry_lock = threading.Lock()


def process_rate_limiter(key: str, action: str) -> RateLimiter:
    """
    Return the limiter every ``action`` request made with ``key`` in this process waits at.

    It is created on first use at :func:`quota_share` requests per second, and no caller changes
    its rate afterwards.  With ``[tencentcloud_mps] quota_storage_uri`` set, it also draws every
    request from the account-wide budget held in that storage (the shared mode).

    :param key: a non-secret name of the account and endpoint, e.g. ``MpsHook.rate_limit_key``.
    :param action: the API action the quota applies to, e.g. ``DescribeAigcImageTask``.
    """
    with _registry_lock:
        limiter = _registry.get((key, action))
        if limiter is None:
            rate, headroom, storage_uri = quota_share(), headroom_for(action), quota_storage_uri()
            window = None
            if storage_uri is not None:
                window = SharedQuotaWindow(storage_uri=storage_uri, key=key, action=action, headroom=headroom)
            limiter = RateLimiter(rate, headroom=headroom, window=window)
            _registry[(key, action)] = limiter
            log.debug("Created the process's rate limiter of %s requests/s for %s on %s", rate, action, key)
        return limiter


def clear_rate_limiters() -> None:
    """Forget every limiter of this process, so the next caller starts afresh (used by tests)."""
    with _registry_lock:
        _registry.clear()
    clear_storages()
