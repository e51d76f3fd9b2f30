"""
The async path never blocks the event loop: role keys are refreshed and the client built off it.

Each test records the thread that does the blocking work (the SDK's metadata HTTP call, loading
the CA bundle into an SSL context) while the hook makes an async call, and checks that it is not
the event loop's thread.  The load test ``tests/load/test_event_loop_lag.py`` measures the same
with asyncio's slow-callback detection, for hundreds of triggers.
"""

from __future__ import annotations

import asyncio
import secrets
import ssl
import threading
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from airflow_provider_mps.hooks.mps import MpsHook

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SECRET_ID = "AKIDEVENTLOOPTEST0000000000000000000000"
SECRET_KEY = "event-loop-key-" + secrets.token_hex(8)
TOKEN = "event-loop-token-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def role_emulator() -> Iterator[ThreadedEmulatorServer]:
    """An emulator that knows the role's temporary keys (SecretId, SecretKey and token)."""
    server = ThreadedEmulatorServer(port=0, secret_id=SECRET_ID, secret_key=SECRET_KEY, token=TOKEN)
    server.start()
    yield server
    server.stop()


def threads_calling(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    """Wrap ``owner.name`` to record the id of every thread that calls it; return that list."""
    original: Callable[..., Any] = getattr(owner, name)
    callers: list[int] = []

    def recording(*args: Any, **kwargs: Any) -> Any:
        callers.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return callers


def describe_on_a_loop(hook: MpsHook, task_id: str, times: int = 1) -> tuple[int, list[dict[str, Any]]]:
    """Describe ``task_id`` ``times`` times on a new event loop; return the loop's thread and results."""

    async def run() -> tuple[int, list[dict[str, Any]]]:
        try:
            return threading.get_ident(), [
                await hook.adescribe_aigc_image_task(task_id) for _ in range(times)
            ]
        finally:
            await hook.aclose()

    return asyncio.run(run())


def test_a_roles_keys_are_refreshed_in_a_worker_thread_not_on_the_event_loop(
    role_emulator, set_connection, cvm_metadata_service, monkeypatch
):
    # Finding 7 of issue 11: the SDK's CVM role credential fetched its keys from the metadata
    # service inside the getter the async client calls while it signs, on the event loop.
    import tencentcloud.common.credential as sdk_credential

    cvm_metadata_service.hand_out(SECRET_ID, SECRET_KEY, TOKEN, expires_in=60)  # refreshed before each use
    fetches = threads_calling(monkeypatch, sdk_credential, "urlopen")
    hook = MpsHook(set_connection("mps_role", extra={"endpoint": role_emulator.endpoint}), retry_limit=0)
    task_id = MpsHook(
        set_connection(
            "mps_keys",
            login=SECRET_ID,
            password=SECRET_KEY,
            extra={"endpoint": role_emulator.endpoint, "token": TOKEN},
        )
    ).create_aigc_image_task(prompt="p")
    served_before = cvm_metadata_service.served

    loop_thread, results = describe_on_a_loop(hook, task_id, times=2)

    assert [result["TaskId"] for result in results] == [task_id, task_id]
    # The keys were fetched again for each describe, never by the loop's thread.
    assert cvm_metadata_service.served - served_before >= 2
    assert fetches
    assert loop_thread not in fetches


def test_the_async_client_loads_its_ca_bundle_in_a_worker_thread_not_on_the_event_loop(mps_conn, monkeypatch):
    # Finding 7 of issue 11: building httpx's AsyncClient loads the CA bundle (~20 ms) on the loop.
    loads = threads_calling(monkeypatch, ssl.SSLContext, "load_verify_locations")
    loads += threads_calling(monkeypatch, ssl.SSLContext, "load_default_certs")
    task_id = MpsHook().create_aigc_image_task(prompt="p")

    loop_thread, [result] = describe_on_a_loop(MpsHook(), task_id)

    assert result["TaskId"] == task_id
    assert loads
    assert loop_thread not in loads


@pytest.mark.asyncio
async def test_hooks_asking_for_the_client_while_it_is_built_share_that_one_build(mps_conn, monkeypatch):
    from airflow_provider_mps.hooks import _mps_clients, _shared_async_clients

    builds = threads_calling(monkeypatch, _mps_clients, "build_async_client")
    hooks = [MpsHook() for _ in range(5)]

    clients = await asyncio.gather(*(hook.aget_conn() for hook in hooks))

    assert (len(builds), len({id(client) for client in clients})) == (1, 1)
    assert _shared_async_clients.count(asyncio.get_running_loop()) == 1
    for hook in hooks:
        await hook.aclose()
    assert _shared_async_clients.count(asyncio.get_running_loop()) == 0


@pytest.mark.asyncio
async def test_a_hook_cancelled_while_the_client_is_built_gives_its_use_up(mps_conn):
    from airflow_provider_mps.hooks import _shared_async_clients

    loop = asyncio.get_running_loop()
    waiting, staying = MpsHook(), MpsHook()
    cancelled = asyncio.create_task(waiting.aget_conn())
    while _shared_async_clients.count(loop) == 0:  # until the build in the worker thread started
        await asyncio.sleep(0.001)
    kept = asyncio.create_task(staying.aget_conn())
    cancelled.cancel()

    client = await kept
    assert cancelled.cancelled()
    assert (waiting._async_client, client.http_client.is_closed) == (None, False)
    await staying.aclose()

    assert client.http_client.is_closed
    assert _shared_async_clients.count(loop) == 0
