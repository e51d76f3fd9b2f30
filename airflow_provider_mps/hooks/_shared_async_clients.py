"""
One SDK async client per connection settings and event loop, shared by every hook of the process.

A triggerer runs hundreds of triggers in one event loop, each with its own :class:`MpsHook`.  An
SDK async client costs ~0.8 MiB and ~20 ms of CPU to build (its ``httpx.AsyncClient`` loads the
CA bundle into a new SSL context), and an ``httpx.AsyncClient`` serves any number of concurrent
requests on its loop, so hooks with the same settings share one.  Each hook holding the client
counts as a user; the last user to release it closes it.  Clients belong to their event loop
(httpx connections cannot move between loops), and the registry forgets a loop when it is
garbage-collected.

The key holds everything the client is built from: the connection settings except the
connection id, and for keys found by the credential chain the place they came from.  Hooks whose
credentials, endpoint, region, proxy, timeout or language differ never share a client.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Hashable

    from airflow_provider_mps.hooks._mps_connection import MpsConnectionSettings
    from airflow_provider_mps.hooks._mps_credentials import ResolvedCredential


@dataclasses.dataclass
class _Shared:
    client: Any
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
    chain = None if from_connection else (credential.source, credential.secret_id())
    return (dataclasses.replace(settings, conn_id=""), chain)


def acquire(loop: asyncio.AbstractEventLoop, key: Hashable, build: Callable[[], Any]) -> Any:
    """
    Return the client of ``key`` on ``loop``, building it with ``build()`` if there is none yet.

    Call it from ``loop``'s thread; every call must be matched by one :func:`release`.

    :param loop: the running event loop.
    :param key: from :func:`client_key`.
    :param build: builds a new client (synchronously, so no other coroutine can build a second).
    """
    with _lock:
        shared = _clients.setdefault(loop, {}).get(key)
        if shared is None:
            shared = _clients[loop][key] = _Shared(build())
        shared.users += 1
        return shared.client


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
        return shared.client


def count(loop: asyncio.AbstractEventLoop) -> int:
    """Return how many clients are open on ``loop`` (for tests and diagnostics)."""
    with _lock:
        return len(_clients.get(loop, {}))
