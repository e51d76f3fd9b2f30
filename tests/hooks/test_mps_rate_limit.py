"""
Every request of the process waits at the process's limiter; a task's own rate never changes it.

The process's share of the account quota is ``[tencentcloud_mps] quota_share`` (set here through
``AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE``).  The tests count what went through the limiters and
compare it with the emulator's request log; the limiter's spacing itself is tested in
``tests/utils/test_rate_limit.py``.  No test here asserts on a measured time between two requests:
on a busy machine, two requests spaced correctly by the limiter can reach the emulator closer
together.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.utils.rate_limit import RateLimiter, clear_rate_limiters

SHARE = 4
CREATE, DESCRIBE = "CreateAigcImageTask", "DescribeAigcImageTask"
#: Calls reach the emulator at most this much closer together than they left the limiter.
SLACK = 0.03


@pytest.fixture(autouse=True)
def quota_share(monkeypatch: pytest.MonkeyPatch):
    """This process may send ``SHARE`` requests per second of each action; the limiters start afresh."""
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", str(SHARE))
    clear_rate_limiters()
    yield
    clear_rate_limiters()


class _CountingLimiter:
    """A process limiter, counting the calls that waited at it."""

    def __init__(self, limiter: RateLimiter, grants: list[tuple[str, float]], action: str) -> None:
        self.limiter, self.grants, self.action = limiter, grants, action

    def acquire(self) -> None:
        self.limiter.acquire()
        self.grants.append((self.action, self.limiter.rate))

    async def aacquire(self) -> None:
        await self.limiter.aacquire()
        self.grants.append((self.action, self.limiter.rate))


@pytest.fixture
def process_grants(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """``(action, rate)`` of every call the hooks let through their process's limiters."""
    from airflow_provider_mps.hooks import _mps_requests

    grants: list[tuple[str, float]] = []
    real = _mps_requests.process_rate_limiter
    monkeypatch.setattr(
        _mps_requests,
        "process_rate_limiter",
        lambda key, action: _CountingLimiter(real(key, action), grants, action),
    )
    return grants


def gaps(requests: list[dict[str, Any]], action: str) -> list[float]:
    times = sorted(r["Time"] for r in requests if r["Action"] == action)
    return [round(later - earlier, 3) for earlier, later in zip(times, times[1:], strict=False)]


def test_every_request_path_of_the_process_waits_at_its_quota_share(mps_conn, process_grants):
    # Finding 6 of issue 11: single creates, sync waits and sensor pokes bypassed the limiter.
    from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor

    mps_conn.configure(rate_limit=0, wait_seconds=600)
    with ThreadPoolExecutor(max_workers=4) as pool:  # four tasks' single creates, each with its hook
        task_ids = list(pool.map(lambda n: MpsHook().create_aigc_image_task(prompt=f"p{n}"), range(4)))

    async def async_describes() -> None:
        hook = MpsHook()
        try:
            await asyncio.gather(*(hook.adescribe_aigc_image_task(task_id) for task_id in task_ids[:2]))
        finally:
            await hook.aclose()

    sensor = MpsAigcImageTaskSensor(task_id="sense", mps_task_id=task_ids[3])
    outcomes: dict[str, Any] = {}

    def call(name: str, function: Any) -> None:
        try:
            outcomes[name] = function()
        except Exception as error:
            outcomes[name] = type(error).__name__

    # All at once, each path in a thread of its own: two describes, a wait (its one describe
    # at timeout=0), a sensor poke, and two async describes on an event loop.
    threads = [
        threading.Thread(target=call, args=item)
        for item in [
            ("describe 0", lambda: MpsHook().describe_aigc_image_task(task_ids[0])["Status"]),
            ("describe 1", lambda: MpsHook().describe_aigc_image_task(task_ids[1])["Status"]),
            ("wait", lambda: MpsHook().wait_for_aigc_image_task(task_ids[2], poll_interval=1, timeout=0)),
            ("poke", lambda: sensor.poke({})),
            ("async", lambda: asyncio.run(async_describes())),
        ]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert outcomes == {
        "describe 0": "WAIT",
        "describe 1": "WAIT",
        "wait": "MpsTaskTimeoutError",
        "poke": False,
        "async": None,
    }
    requests = mps_conn.requests()
    assert [r["ErrorCode"] for r in requests] == [None] * len(requests)
    # The wait's one describe is cut off if its deadline passes while it queues at the limiter.
    describes = sum(r["Action"] == DESCRIBE for r in requests)
    assert describes in (5, 6)
    assert sorted(r["Action"] for r in requests) == [CREATE] * 4 + [DESCRIBE] * describes
    # Each request the emulator saw went through the process's limiter of its action, at the share.
    assert sorted(process_grants) == [(CREATE, SHARE)] * 4 + [(DESCRIBE, SHARE)] * describes


def test_a_hooks_own_rate_limit_spaces_only_its_own_calls(mps_conn, process_grants, monkeypatch):
    from airflow_provider_mps.hooks import _mps_requests
    from airflow_provider_mps.utils.rate_limit import process_rate_limiter

    own_grants: list[float] = []

    class OwnLimiter(RateLimiter):  # the hooks' own limiters, counted
        def acquire(self) -> None:
            super().acquire()
            own_grants.append(self.rate)

    monkeypatch.setattr(_mps_requests, "RateLimiter", OwnLimiter)
    mps_conn.configure(rate_limit=0)
    task_id = MpsHook().create_aigc_image_task(prompt="p")
    slow = MpsHook(rate_limit=2)

    started = time.monotonic()
    for _ in range(3):
        slow.describe_aigc_image_task(task_id)
    slow_elapsed = time.monotonic() - started
    for _ in range(3):
        MpsHook().describe_aigc_image_task(task_id)

    # The slow hook's three calls waited at its own 2/s limiter, then at the process's; the other
    # hook's calls only at the process's, whose rate is still the share.  Three calls at 2/s (less
    # 10 % headroom) cannot take less than two intervals.
    assert own_grants == [2.0] * 3
    assert process_grants == [(CREATE, SHARE)] + [(DESCRIBE, SHARE)] * 6
    assert process_rate_limiter(slow.rate_limit_key, DESCRIBE).rate == SHARE
    assert slow_elapsed >= 2 / (2 * 0.9) - SLACK


@pytest.mark.parametrize("rate_limit", [0, -1, True, "5"])
def test_a_hooks_own_rate_limit_must_be_a_positive_number(rate_limit):
    from airflow_provider_mps.exceptions import MpsInvalidParameterError

    with pytest.raises(MpsInvalidParameterError) as raised:
        MpsHook(rate_limit=rate_limit)

    assert str(raised.value) == (
        f"Invalid rate_limit {rate_limit!r}: must be a number of requests per second greater than 0, or None."
    )


def test_a_refused_request_backs_off_with_jitter_and_waits_for_a_new_slot(mps_conn, hook_logs):
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={CREATE: 2})

    MpsHook(retry_limit=3, retry_delay=0.2).create_aigc_image_task(prompt="p")

    requests = mps_conn.requests()
    assert [r["ErrorCode"] for r in requests] == ["RequestLimitExceeded", "RequestLimitExceeded", None]
    delays = [
        float(log["event"].rsplit(" in ", 1)[1][:-3]) for log in hook_logs if log["log_level"] == "warning"
    ]
    # Retry n waits a random point in the upper half of retry_delay * 2 ** (n - 1).
    assert 0.1 <= delays[0] <= 0.2
    assert 0.2 <= delays[1] <= 0.4
    assert [gap for gap in gaps(requests, CREATE) if gap < 0.1 - SLACK] == []
