"""
One connection read per connection and event loop, shared by the hooks that start together.

A triggerer that starts a thousand triggers of one connection would otherwise read that
connection a thousand times: each read asks the secrets backends (or, on Airflow 3, the
triggerer's supervisor), parses and validates the extras, resolves the credential and registers
the secrets with the masker, all on or through the event loop.  Here the first hook to need a
connection reads it; every hook asking on the same loop while that read runs, or within
:data:`FRESH_SECONDS` after it, gets the same result.  A failed read is not kept (the next hook
reads anew), and a rotated key reaches new triggers at most :data:`FRESH_SECONDS` later.  Reads
belong to their event loop and are forgotten with it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Hashable

#: How long a finished read serves new hooks, in seconds.
FRESH_SECONDS = 10.0


@dataclasses.dataclass
class _Read:
    """A read of one connection: ``result`` resolves to what it read; ``began`` is monotonic seconds."""

    began: float
    result: asyncio.Future[Any]

    def serves(self, now: float) -> bool:
        """Whether a hook asking at ``now`` may use this read."""
        if not self.result.done():
            return True
        failed = self.result.cancelled() or self.result.exception() is not None
        return not failed and now - self.began <= FRESH_SECONDS


_reads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Read]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


async def shared_read(key: Hashable, read: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """
    Return what ``read`` returns for ``key`` on the running loop, reading at most once meanwhile.

    The read runs as a task of its own, so a hook cancelled while waiting for it does not cancel
    it for the others.

    :param key: names the connection read (its id and everything else the read depends on).
    :param read: reads the connection; called only when no read of ``key`` serves.
    """
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    with _lock:
        per_loop = _reads.setdefault(loop, {})
        entry = per_loop.get(key)
        if entry is None or not entry.serves(now):
            entry = per_loop[key] = _Read(now, loop.create_task(read()))
    return await asyncio.shield(entry.result)


def forget(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Forget the reads of ``loop`` (of every loop when ``None``), so the next hook reads anew."""
    with _lock:
        if loop is None:
            _reads.clear()
        else:
            _reads.pop(loop, None)
