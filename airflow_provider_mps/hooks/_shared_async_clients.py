"""
One SDK async client per connection settings and event loop, shared by every hook of the process.

A triggerer runs hundreds of triggers in one event loop, each with its own :class:`MpsHook`.  An
SDK async client costs ~0.8 MiB and ~20 ms of CPU to build (its ``httpx.AsyncClient`` loads the
CA bundle into a new SSL context), and an ``httpx.AsyncClient`` serves any number of concurrent
requests on its loop, so hooks with the same settings share one.  It is built in a worker thread,
so loading the CA bundle never blocks the event loop; hooks asking for it meanwhile wait for that
one build.  Each hook holding the client counts as a user; the last user to release it closes it.
Clients belong to their event loop (httpx connections cannot move between loops), and the
registry forgets a loop when it is garbage-collected.

The key holds everything the client is built from: the connection settings except the
connection id, and for keys found by the credential chain the place they came from.  Hooks whose
credentials, endpoint, region, proxy, timeout or language differ never share a client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential


@dataclasses.dataclass
class _Shared:
    """A client of one loop: ``built`` resolves to it once the worker thread has built it."""

    built: asyncio.Future[Any]
    users: int = 0


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Shared]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def client_key(settings: MpsConnectionSettings, credential: ResolvedCredential) -> Hashable:
    """
    Return the key of the client built from ``settings`` and ``credential`` (kept in memory only).

    :param settings: the validated connection.
    :param credential: the credential the client signs with.
    """
    from_connection = bool(settings.secret_id and settings.secret_key)
    chain = None if from_connection else (credential.source, credential.account_key)
    return (dataclasses.replace(settings, conn_id=""), chain)


async def acquire(key: Hashable, build: Callable[[], Any]) -> Any:
    """
    Return the client of ``key`` on the running loop, building it in a worker thread if there is none.

    Every call that returns must be matched by one :func:`release`.  A caller cancelled while the
    client is being built gives its use up itself; a failed build is forgotten, so the next caller
    tries again.

    :param key: from :func:`client_key`.
    :param build: builds a new client; called in a worker thread, at most once per key and loop.
    """
    loop = asyncio.get_running_loop()
    with _lock:
        per_loop = _clients.setdefault(loop, {})
        shared = per_loop.get(key)
        if shared is None:
            shared = per_loop[key] = _Shared(asyncio.ensure_future(asyncio.to_thread(build)))
            shared.built.add_done_callback(lambda built: _forget_failed_build(loop, key, shared, built))
        shared.users += 1
    try:
        return await asyncio.shield(shared.built)
    except asyncio.CancelledError:
        built = shared.built
        if not built.done() or (not built.cancelled() and built.exception() is None):
            _give_up(loop, key, shared)
        raise


def _forget_failed_build(
    loop: asyncio.AbstractEventLoop, key: Hashable, shared: _Shared, built: asyncio.Future[Any]
) -> None:
    if built.cancelled() or built.exception() is not None:
        with _lock:
            per_loop = _clients.get(loop)
            if per_loop is not None and per_loop.get(key) is shared:
                del per_loop[key]


def _give_up(loop: asyncio.AbstractEventLoop, key: Hashable, shared: _Shared) -> None:
    """Drop one use of a client whose caller never got it; close the client if nobody else uses it."""
    with _lock:
        shared.users -= 1
        per_loop = _clients.get(loop)
        last = shared.users == 0 and per_loop is not None and per_loop.get(key) is shared
        if last:
            del per_loop[key]  # type: ignore[union-attr]
    if last:

        def close(built: asyncio.Future[Any]) -> None:
            if not built.cancelled() and built.exception() is None and not loop.is_closed():
                loop.create_task(built.result().close())

        shared.built.add_done_callback(close)


def release(loop: asyncio.AbstractEventLoop, key: Hashable) -> Any | None:
    """
    Give up one use of the client of ``key`` on ``loop``; return it if that was the last use.

    The caller closes a returned client (on ``loop``); other users keep theirs open.

    :param loop: the loop the client was acquired on.
    :param key: from :func:`client_key`.
    """
    with _lock:
        per_loop = _clients.get(loop)
        shared = per_loop.get(key) if per_loop is not None else None
        if shared is None:
            return None
        shared.users -= 1
        if shared.users > 0:
            return None
        del per_loop[key]  # type: ignore[union-attr]
    return shared.built.result()


async def arelease(loop: asyncio.AbstractEventLoop, key: Hashable) -> None:
    """
    :func:`release`, then close the client on ``loop`` if that was its last use.

    Called on ``loop`` it closes the client before returning; called on another loop it schedules
    the close on ``loop`` if ``loop`` still runs (a client cannot be closed off its own loop).

    :param loop: the loop the client was acquired on.
    :param key: from :func:`client_key`.
    """
    last = release(loop, key)
    if last is None:
        return
    if loop is asyncio.get_running_loop():
        await last.close()
    elif not loop.is_closed() and loop.is_running():
        asyncio.run_coroutine_threadsafe(last.close(), loop)


def count(loop: asyncio.AbstractEventLoop) -> int:
    """Return how many clients are open (or being built) on ``loop`` (for tests and diagnostics)."""
    with _lock:
        return len(_clients.get(loop, {}))
