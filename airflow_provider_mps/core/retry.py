"""
The one backoff formula and the one retry loop of the provider, for sync and async callers alike.

:class:`RetryPolicy` decides everything: whether an error is retried, how long to wait, and when a
deadline leaves no room.  :func:`call_with_retries` and :func:`acall_with_retries` only run it,
one with ``time.sleep`` (or any interruptible wait), the other with ``asyncio.sleep``.  The hook's
creates and describes, the batch's creates and the triggers' polling backoff all come from here.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_mps.exceptions import MpsError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

T = TypeVar("T")

#: The shortest timeout a request bounded by a deadline gets, in seconds: a wait whose deadline is
#: (nearly) past still makes its call, and overruns the deadline by at most this much.
MIN_REQUEST_TIMEOUT = 1.0
#: The longest backoff of the hook's retries, in seconds.
MAX_RETRY_DELAY = 30.0


def backoff_delay(attempt: int, base: float, cap: float = MAX_RETRY_DELAY) -> float:
    """
    Seconds to wait before retry number ``attempt`` (1-based): exponential, with jitter over its upper half.

    Callers that fail together (triggers of one triggerer, items of one batch) do not retry together.

    :param attempt: the retry about to be made, 1 for the first.
    :param base: the delay scale in seconds (the hook's ``retry_delay``, a trigger's ``poll_interval``).
    :param cap: the longest wait.
    """
    ceiling = min(cap, base * (2 ** (attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


class DeadlineReached(MpsError):
    """
    A failed request was not retried: its backoff would have ended after the deadline.

    :param error: the failure that was not retried.
    """

    def __init__(self, error: MpsError) -> None:
        self.error = error
        super().__init__(f"No time was left before the deadline to retry after: {error}")


@dataclass
class RetryPolicy:
    """
    When a failed call is made again, and after how long.

    :param limit: how many retries at most.
    :param delay: the backoff scale in seconds (see :func:`backoff_delay`).
    :param retryable: whether an error may be retried.
    :param label: what is retried, named in the WARNING of each retry (e.g. ``CreateAigcImageTask``).
    :param log: the logger of that WARNING.
    :param deadline: a ``time.monotonic()`` time to end by, or ``None``: each attempt gets the time
        left as its timeout (at least :data:`MIN_REQUEST_TIMEOUT`), and no retry ends after it.
    """

    limit: int
    delay: float
    retryable: Callable[[MpsError], bool]
    label: str
    log: Any
    deadline: float | None = None

    def timeout(self) -> float | None:
        """The timeout of the next attempt: the time left before the deadline, if there is one."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), MIN_REQUEST_TIMEOUT)

    def next_delay(self, error: MpsError, attempt: int) -> float | None:
        """
        The seconds to wait before retry number ``attempt``, or ``None`` to give up and raise ``error``.

        :raises DeadlineReached: when the backoff would end after the deadline.
        """
        if attempt > self.limit or not self.retryable(error):
            return None
        delay = backoff_delay(attempt, self.delay)
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            raise DeadlineReached(error) from error
        self.log.warning(
            "%s failed with %s: %s (RequestId %s); retry %d of %d in %.1f s.",
            self.label,
            getattr(error, "code", type(error).__name__),
            getattr(error, "message", str(error)),
            getattr(error, "request_id", None) or "none",
            attempt,
            self.limit,
            delay,
        )
        return delay


def call_with_retries(
    attempt_once: Callable[[float | None], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """
    Call ``attempt_once(timeout)`` until it succeeds or ``policy`` gives up.

    :param attempt_once: one attempt, given the timeout it must end within (``None``: no deadline).
    :param policy: the retry policy.
    :param sleep: the wait between attempts; a wait that returns ``True`` (an interrupted
        ``threading.Event.wait``) ends the retries with the last error.
    """
    attempt = 0
    while True:
        try:
            return attempt_once(policy.timeout())
        except MpsError as error:
            attempt += 1
            delay = policy.next_delay(error, attempt)
            if delay is None or sleep(delay) is True:
                raise


async def acall_with_retries(attempt_once: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """
    Async :func:`call_with_retries`: the same policy, waiting with ``asyncio.sleep``.

    :param attempt_once: one attempt.
    :param policy: the retry policy.
    """
    attempt = 0
    while True:
        try:
            return await attempt_once()
        except MpsError as error:
            attempt += 1
            delay = policy.next_delay(error, attempt)
            if delay is None:
                raise
            await asyncio.sleep(delay)
