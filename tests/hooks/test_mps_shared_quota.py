"""
The shared quota mode end to end: several processes of one account, one Redis, one emulator.

Each process is a real Python process (``spawn``) with its own hooks and its own limiters, as a
Celery worker's task or a triggerer would be.  Each alone may send its whole share (20/s); the
assertions count the requests the emulator received in every one-second window of its own log,
never a duration.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps import SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.utils.rate_limit import clear_rate_limiters
from tests.utils.redis_server import module_redis_server
from tests.utils.test_shared_quota import busiest_window, needs_limits

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

pytestmark = needs_limits

CREATE, DESCRIBE = "CreateAigcImageTask", "DescribeAigcImageTask"
URI_ENV = "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI"
SHARE_ENV = "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE"
PASSWORD = "hooks-redis-pass"
#: Describes each process sends: three processes send 4.5 seconds of the account's quota.
CALLS_EACH = 30


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    yield from module_redis_server(tmp_path_factory, PASSWORD)


@pytest.fixture
def shared_quota(redis_server, monkeypatch):
    """Every process started by the test draws from the Redis budget, each with the whole quota as share."""
    redis_server.flush()
    monkeypatch.setenv(URI_ENV, redis_server.uri)
    monkeypatch.setenv(SHARE_ENV, str(SERVICE_QUOTA_PER_SECOND))
    clear_rate_limiters()
    yield redis_server
    clear_rate_limiters()


def describe_from_a_process(task_id: str, calls: int, use_async: bool, barrier: Barrier) -> None:
    """In a fresh process: describe ``task_id`` ``calls`` times from four threads or one event loop."""
    hook = MpsHook(retry_limit=0)
    barrier.wait(timeout=120)
    if use_async:

        async def describes() -> None:
            try:
                await asyncio.gather(*(hook.adescribe_aigc_image_task(task_id) for _ in range(calls)))
            finally:
                await hook.aclose()

        asyncio.run(describes())
    else:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda _: hook.describe_aigc_image_task(task_id), range(calls)))


def run_processes(task_id: str, kinds: list[bool]) -> list[int | None]:
    """Start one process per entry of ``kinds`` (``True``: async), all released at once; their exit codes."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(kinds))
    processes = [
        context.Process(target=describe_from_a_process, args=(task_id, CALLS_EACH, use_async, barrier))
        for use_async in kinds
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=180)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(10)
    return [process.exitcode for process in processes]


@pytest.mark.skipif(sys.platform != "linux", reason="the processes are spawned on the test machine")
def test_processes_sharing_the_redis_budget_stay_within_the_quota_in_every_second(mps_conn, shared_quota):
    mps_conn.configure(wait_seconds=600)
    task_id = MpsHook().create_aigc_image_task(prompt="shared quota")

    # Two processes describing from threads (a worker's task, a sensor), one from an event loop
    # (a triggerer), 90 describes in all: at their shares alone they would send 60 per second.
    exit_codes = run_processes(task_id, [False, False, True])

    requests = mps_conn.requests()
    describes = [r for r in requests if r["Action"] == DESCRIBE]
    assert exit_codes == [0, 0, 0]
    assert (len(describes), [r["ErrorCode"] for r in requests if r["ErrorCode"]]) == (3 * CALLS_EACH, [])
    assert busiest_window([r["Time"] for r in describes]) <= SERVICE_QUOTA_PER_SECOND


def test_a_tasks_own_rate_limit_does_not_lower_the_shared_budget(mps_conn, shared_quota):
    from airflow_provider_mps.utils.rate_limit import process_rate_limiter

    mps_conn.configure(wait_seconds=600)
    slow = MpsHook(rate_limit=0.5)
    task_id = slow.create_aigc_image_task(prompt="own spacing")
    key = slow.rate_limit_key

    shared: Any = process_rate_limiter(key, DESCRIBE)
    slow.describe_aigc_image_task(task_id)

    # The other DAG's hook, with no rate_limit of its own, still gets the account's whole budget.
    other = MpsHook()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda _: other.describe_aigc_image_task(task_id), range(20)))

    assert (process_rate_limiter(key, DESCRIBE) is shared, shared.budget, shared.rate) == (True, 18, 20.0)
    assert [r["ErrorCode"] for r in mps_conn.requests()] == [None] * 22
