"""
Process-wide client-side rate limiters, shared by threads and asyncio tasks alike.

The MPS API allows 20 requests per second per action and account.  A triggerer process may run
a thousand deferred tasks polling ``DescribeAigcImageTask`` with the same credentials, and a
worker may submit a batch of ``CreateAigcImageTask`` calls from a thread pool; each of them asks
:func:`get_rate_limiter` for the limiter of its ``(key, action)`` and gets the same object, so the
service never sees more than ``rate`` calls per second from this process.

The limiter spaces calls evenly, ``1 / rate`` seconds apart: each caller reserves the next free
slot under a lock, then waits (``time.sleep`` or ``asyncio.sleep``) until its slot comes.  The
reservation is the only shared state and holds no event-loop primitive, so one limiter serves
any number of threads and event loops at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

log = logging.getLogger(__name__)

#: The documented MPS quota of every AIGC action, in requests per second.
DEFAULT_RATE = 20.0


class RateLimiter:
    """
    Space calls at least ``1 / rate`` seconds apart, across threads and event loops.

    :param rate: the most calls allowed per second; must be positive.
    """

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._interval = _interval(rate)
        self._rate = float(rate)

    @property
    def rate(self) -> float:
        """The most calls allowed per second."""
        return self._rate

    def lower_rate(self, rate: float) -> None:
        """
        Lower the rate to ``rate`` if that is below the current one; a higher rate is ignored.

        :param rate: the most calls per second a new user of this limiter allows.
        """
        interval = _interval(rate)
        with self._lock:
            if interval > self._interval:
                self._interval = interval
                self._rate = float(rate)

    def reserve(self) -> float:
        """
        Reserve the next free slot and return how many seconds to wait until it comes.

        Both :meth:`acquire` and :meth:`aacquire` are this reservation plus a sleep.
        """
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self._interval
        return slot - now

    def acquire(self) -> None:
        """Block the calling thread until the caller may send its request."""
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def aacquire(self) -> None:
        """Wait, without blocking the event loop, until the caller may send its request."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


def _interval(rate: float) -> float:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0:
        raise ValueError(f"The rate limit must be a positive number of requests per second, got {rate!r}.")
    return 1.0 / float(rate)


_registry: dict[tuple[str, str], RateLimiter] = {}
_registry_lock = threading.Lock()


def get_rate_limiter(key: str, action: str, rate: float = DEFAULT_RATE) -> RateLimiter:
    """
    Return the process-wide limiter for ``action`` calls made with ``key``.

    Every caller passing the same ``key`` and ``action`` gets the same limiter.  When callers ask
    for different rates, the lowest wins: a quota is only safe if nobody exceeds it.

    :param key: a non-secret name of the account and endpoint, e.g. ``MpsHook.rate_limit_key``.
    :param action: the API action the quota applies to, e.g. ``DescribeAigcImageTask``.
    :param rate: the most calls per second this caller allows.
    """
    _interval(rate)
    with _registry_lock:
        limiter = _registry.get((key, action))
        if limiter is None:
            limiter = _registry[(key, action)] = RateLimiter(rate)
            log.debug("Created a rate limiter of %s requests/s for %s on %s", rate, action, key)
            return limiter
    if rate < limiter.rate:
        log.info("Lowering the rate limit for %s on %s to %s requests/s", action, key, rate)
        limiter.lower_rate(rate)
    return limiter


def clear_rate_limiters() -> None:
    """Forget every limiter of this process, so the next caller starts afresh (used by tests)."""
    with _registry_lock:
        _registry.clear()
