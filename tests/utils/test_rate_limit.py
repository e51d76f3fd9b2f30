from __future__ import annotations

import asyncio
import threading
import time

import pytest

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.utils.rate_limit import (
    HEADROOM,
    RateLimiter,
    process_rate_limiter,
    quota_share,
)

# Slots are reserved on time.monotonic() and measured on the same clock. A busy machine can only
# make a caller *later* than its slot, never earlier, so the slack covers clock resolution alone.
CLOCK_SLACK = 0.002
#: Grant times are compared with the limiter's own interval: only float rounding separates them.
FLOAT_SLACK = 1e-9


def _offsets(start: float, times: list[float]) -> list[float]:
    """How long after ``start`` each call went through, earliest first."""
    return [t - start for t in sorted(times)]


def _early(start: float, times: list[float], interval: float) -> list[int]:
    """The calls (k-th earliest) that went through before k intervals after ``start``."""
    return [k for k, offset in enumerate(_offsets(start, times)) if offset < k * interval - CLOCK_SLACK]


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


def test_same_key_and_action_share_one_process_limiter():
    first = process_rate_limiter("AKID-share@http://127.0.0.1:1", "DescribeAigcImageTask")
    again = process_rate_limiter("AKID-share@http://127.0.0.1:1", "DescribeAigcImageTask")

    assert again is first
    assert first.rate == 20.0


def test_other_key_or_action_gets_its_own_process_limiter():
    base = process_rate_limiter("AKID-own@http://127.0.0.1:1", "DescribeAigcImageTask")

    assert process_rate_limiter("AKID-other@http://127.0.0.1:1", "DescribeAigcImageTask") is not base
    assert process_rate_limiter("AKID-own@http://127.0.0.1:1", "CreateAigcImageTask") is not base


def test_the_process_limiter_runs_at_the_configured_quota_share(monkeypatch):
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", "2.5")

    limiter = process_rate_limiter("AKID-share@http://127.0.0.1:1", "DescribeAigcImageTask")

    assert (quota_share(), limiter.rate, limiter.interval) == (2.5, 2.5, 1 / (2.5 * 0.9))


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_quota_share_means_the_whole_quota(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", value)

    assert quota_share() == 20.0


@pytest.mark.parametrize("value", ["0", "-1", "five", "inf", "nan"])
def test_a_quota_share_that_is_not_a_positive_rate_is_refused_naming_the_option(monkeypatch, value):
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", value)

    with pytest.raises(MpsInvalidParameterError) as raised:
        process_rate_limiter("AKID-bad@http://127.0.0.1:1", "DescribeAigcImageTask")

    assert str(raised.value) == (
        f"Invalid [tencentcloud_mps] quota_share {value!r}: must be a number of requests per second "
        "greater than 0, such as 5 (the account's quota of 20 divided among the processes sharing it)."
    )


@pytest.mark.parametrize("rate", [0, -1, float("nan"), "20", True])
def test_rate_must_be_a_positive_number(rate):
    with pytest.raises(ValueError, match="The rate limit must be a positive number") as error:
        RateLimiter(rate)

    expected = f"The rate limit must be a positive number of requests per second, got {rate!r}."
    assert str(error.value) == expected


def test_the_interval_keeps_ten_percent_headroom_under_the_rate():
    limiter = RateLimiter(rate=20)

    assert (limiter.rate, limiter.interval, HEADROOM) == (20.0, 1 / 18, 0.10)


class _RecordingLimiter(RateLimiter):
    """
    A limiter that keeps the time of every grant, as the limiter itself took it under its lock.

    The spacing is checked on these times rather than on times a caller takes after
    :meth:`~RateLimiter.acquire` returns: a busy machine can delay a caller between the two, which
    would make a correct limiter look wrong.
    """

    def __init__(self, rate: float) -> None:
        self.grants: list[float] = []
        super().__init__(rate)

    @property  # type: ignore[override]
    def _last_grant(self) -> float:
        return self._recorded_last_grant

    @_last_grant.setter
    def _last_grant(self, value: float) -> None:
        self._recorded_last_grant = value
        if value != float("-inf"):
            self.grants.append(value)


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times[:-1], times[1:], strict=True)]


def test_first_call_goes_through_at_once_and_the_next_waits_one_interval(monkeypatch):
    from airflow_provider_mps.utils import rate_limit

    limiter = _RecordingLimiter(rate=4)
    sleeps: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(rate_limit.time, "sleep", sleep)

    limiter.acquire()
    slept_before_the_first = list(sleeps)
    limiter.acquire()

    assert slept_before_the_first == []
    assert sleeps  # the second call waited for its slot, and never longer than one interval
    assert [seconds for seconds in sleeps if not 0 < seconds <= limiter.interval] == []
    assert [gap for gap in _gaps(limiter.grants) if gap < limiter.interval - FLOAT_SLACK] == []


@pytest.mark.asyncio
async def test_slots_missed_during_an_event_loop_stall_are_not_made_up_in_a_burst():
    limiter = _RecordingLimiter(rate=50)

    calls = [asyncio.create_task(limiter.aacquire()) for _ in range(10)]
    await asyncio.sleep(0)  # every call is queued; the first went through
    time.sleep(5 * limiter.interval)  # the loop stalls over several slots
    await asyncio.gather(*calls)

    assert len(limiter.grants) == 10
    assert [gap for gap in _gaps(limiter.grants) if gap < limiter.interval - FLOAT_SLACK] == []


def test_threads_after_a_stalled_thread_still_go_one_interval_apart():
    limiter = _RecordingLimiter(rate=50)
    limiter.acquire()
    time.sleep(5 * limiter.interval)  # long past the next slot: it must not be spent twice

    threads = [threading.Thread(target=limiter.acquire) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(limiter.grants) == 7
    assert [gap for gap in _gaps(limiter.grants) if gap < limiter.interval - FLOAT_SLACK] == []


@pytest.mark.asyncio
async def test_a_cancelled_waiter_hands_its_turn_to_the_next():
    limiter = RateLimiter(rate=20)
    await limiter.aacquire()
    head = asyncio.create_task(limiter.aacquire())
    after = asyncio.create_task(limiter.aacquire())
    await asyncio.sleep(0)
    head.cancel()

    await asyncio.wait_for(after, timeout=5)

    assert (head.cancelled(), after.done(), len(limiter._queue)) == (True, True, 0)


def test_threads_are_spaced_one_interval_apart():
    limiter = RateLimiter(rate=50)
    times: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        limiter.acquire()
        with lock:
            times.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(12)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(times) == 12
    assert _early(start, times, 0.02) == []


@pytest.mark.asyncio
async def test_coroutines_are_spaced_one_interval_apart():
    limiter = RateLimiter(rate=50)
    times: list[float] = []

    async def call() -> None:
        await limiter.aacquire()
        times.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(call() for _ in range(12)))

    assert len(times) == 12
    assert _early(start, times, 0.02) == []


@pytest.mark.asyncio
async def test_threads_and_coroutines_share_the_same_spacing():
    limiter = RateLimiter(rate=50)
    times: list[float] = []
    lock = threading.Lock()

    def in_thread() -> None:
        limiter.acquire()
        with lock:
            times.append(time.monotonic())

    async def in_loop() -> None:
        await limiter.aacquire()
        with lock:
            times.append(time.monotonic())

    start = time.monotonic()
    await asyncio.gather(*(asyncio.to_thread(in_thread) for _ in range(6)), *(in_loop() for _ in range(6)))

    assert len(times) == 12
    assert _early(start, times, 0.02) == []


@pytest.mark.asyncio
async def test_waiting_coroutines_do_not_block_the_event_loop():
    limiter = RateLimiter(rate=10)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(*(limiter.aacquire() for _ in range(4)))
    ticking.cancel()

    # Four calls at 10/s take 0.3 s; a blocking wait would have starved the ticker.
    assert ticks >= 10


def test_creates_keep_less_headroom_than_describes_so_batches_stay_near_the_quota():
    create = process_rate_limiter("account@endpoint", "CreateAigcImageTask")
    describe = process_rate_limiter("account@endpoint", "DescribeAigcImageTask")

    assert (create.interval, describe.interval) == (1 / 19.5, 1 / 18)
