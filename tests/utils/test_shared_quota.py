"""
The shared quota mode's configuration, its limiter and its moving window (``memory://`` and Redis).

The window is checked by counting, never by timing: the times the limiter let calls through are
grouped into one-second windows and each window's count compared with the budget.  Requests
against the emulator are counted in ``tests/hooks/test_mps_shared_quota.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import subprocess
import sys
import threading
import time

import pytest

from airflow_provider_mps import SERVICE_QUOTA_PER_SECOND
from airflow_provider_mps.exceptions import MpsInvalidParameterError, MpsNetworkError
from airflow_provider_mps.utils import shared_quota
from airflow_provider_mps.utils.rate_limit import RateLimiter, clear_rate_limiters, process_rate_limiter
from tests.utils.redis_server import module_redis_server
from tests.windows import max_in_any_window

CREATE, DESCRIBE = "CreateAigcImageTask", "DescribeAigcImageTask"
URI_ENV = "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI"
PASSWORD = "s3cr3t-redis-pass"
QUOTA = SERVICE_QUOTA_PER_SECOND

needs_limits = pytest.mark.skipif(
    importlib.util.find_spec("limits") is None,
    reason="the limits library is not installed: install the provider's shared-quota extra",
)


#: The most of some times inside any one-second window (used by the other quota suites too).
busiest_window = max_in_any_window


@pytest.fixture(autouse=True)
def fresh_limiters(monkeypatch):
    monkeypatch.delenv(URI_ENV, raising=False)
    monkeypatch.delenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", raising=False)
    clear_rate_limiters()
    yield
    clear_rate_limiters()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    """A password-protected redis-server on a free loopback port for this module."""
    yield from module_redis_server(tmp_path_factory, PASSWORD)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("redis://:p4ss@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("redis://user:p4ss@redis-host:6379/2", "redis://***@redis-host:6379/2"),
        ("rediss://127.0.0.1:6380/0?password=p4ss&ssl_cert_reqs=none", None),
        ("memory://", "memory://"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_the_storage_uri_is_shown_without_its_user_or_password(uri, shown):
    redacted = shared_quota.redact_storage_uri(uri)

    if shown is None:
        assert redacted == "rediss://127.0.0.1:6380/0?password=***&ssl_cert_reqs=none"
    else:
        assert redacted == shown
    assert "p4ss" not in redacted


def test_the_shared_window_does_not_import_the_rate_limiter():
    # One direction only: rate_limit holds a SharedQuotaWindow; shared_quota knows no limiter.
    code = (
        "import sys, airflow_provider_mps.utils.shared_quota\n"
        "print(sorted(m for m in sys.modules if m.startswith('airflow_provider_mps')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert result.stdout.splitlines()[-1] == str(
        ["airflow_provider_mps", "airflow_provider_mps.utils", "airflow_provider_mps.utils.shared_quota"]
    )


def test_without_a_storage_uri_each_process_keeps_its_own_share(monkeypatch):
    monkeypatch.setenv(URI_ENV, "  ")

    limiter = process_rate_limiter("AKID@endpoint", DESCRIBE)

    assert (type(limiter), limiter.window, limiter.budget, shared_quota.quota_storage_uri()) == (
        RateLimiter,
        None,
        None,
        None,
    )


@needs_limits
def test_with_a_storage_uri_the_process_limiter_draws_from_the_shared_window(monkeypatch):
    monkeypatch.setenv(URI_ENV, "memory://")
    monkeypatch.setenv("AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE", "20")

    describe = process_rate_limiter("AKID@endpoint", DESCRIBE)
    create = process_rate_limiter("AKID@endpoint", CREATE)

    assert isinstance(describe.window, shared_quota.SharedQuotaWindow)
    # The window keeps each action's headroom: 18 describes and 19 creates per second, account-wide.
    assert (describe.budget, create.budget, describe.rate, create.rate) == (18, 19, 20.0, 20.0)
    assert repr(describe) == (
        "RateLimiter(rate=20, headroom=0.1, window=SharedQuotaWindow(storage='memory://', "
        "action='DescribeAigcImageTask', budget=18))"
    )
    assert process_rate_limiter("AKID@endpoint", DESCRIBE) is describe


def test_without_the_limits_library_the_error_names_the_extra(monkeypatch):
    monkeypatch.setenv(URI_ENV, "redis://:p4ss@127.0.0.1:6379/0")
    monkeypatch.setitem(sys.modules, "limits", None)
    from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

    with pytest.raises(AirflowOptionalProviderFeatureException) as raised:
        process_rate_limiter("AKID@endpoint", DESCRIBE)

    assert "shared-quota" in str(raised.value)
    assert "p4ss" not in str(raised.value)


@needs_limits
@pytest.mark.parametrize("uri", ["nosuch://:p4ss@127.0.0.1:1/0", "async+redis://:p4ss@127.0.0.1:1/0"])
def test_an_unsupported_storage_uri_is_refused_without_showing_its_password(monkeypatch, uri):
    monkeypatch.setenv(URI_ENV, uri)

    with pytest.raises(MpsInvalidParameterError) as raised:
        process_rate_limiter("AKID@endpoint", DESCRIBE)

    assert str(raised.value).startswith("Invalid [tencentcloud_mps] quota_storage_uri '")
    assert "***@127.0.0.1:1/0" in str(raised.value)
    assert "p4ss" not in str(raised.value)
    assert raised.value.__cause__ is None


@needs_limits
def test_an_unreachable_storage_fails_the_request_before_it_is_sent(monkeypatch, caplog):
    from tests.hooks.conftest import closed_loopback_port

    monkeypatch.setenv(URI_ENV, f"redis://:p4ss@127.0.0.1:{closed_loopback_port()}/0")
    caplog.set_level(logging.DEBUG)
    limiter = process_rate_limiter("AKID@endpoint", DESCRIBE)

    with pytest.raises(MpsNetworkError) as raised:
        limiter.acquire()

    error = raised.value
    assert (error.code, error.action, error.request_may_have_reached_service) == (
        "ClientNetworkError.QuotaStorageUnavailable",
        DESCRIBE,
        False,
    )
    assert "p4ss" not in str(error) + caplog.text + repr(limiter)
    assert "redis://***@127.0.0.1:" in str(error)


@needs_limits
def test_the_log_names_the_storage_without_its_password(monkeypatch, caplog, redis_server):
    monkeypatch.setenv(URI_ENV, redis_server.uri)
    caplog.set_level(logging.DEBUG, logger="airflow_provider_mps")

    process_rate_limiter("AKID@endpoint", DESCRIBE).acquire()

    assert f"The MPS quota is shared through redis://***@127.0.0.1:{redis_server.port}/0" in caplog.text
    assert PASSWORD not in caplog.text


def _hammer_from_threads(limiters: list[RateLimiter], calls_each: int) -> list[float]:
    """Each limiter is one "process": four threads per limiter acquire ``calls_each`` times."""
    grants: list[float] = []
    lock = threading.Lock()

    def call(limiter: RateLimiter) -> None:
        for _ in range(calls_each):
            limiter.acquire()
            with lock:
                grants.append(time.time())

    threads = [threading.Thread(target=call, args=(lim,)) for lim in limiters for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return grants


@needs_limits
@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_limiters_of_several_processes_together_stay_within_one_window(storage, request):
    # Three limiters of one account and action stand for three processes: each alone could send
    # its whole share (20/s); together they take no more than the window's 18 slots per second.
    # Grants are timed after the slot was taken, as the service would time the requests: some
    # later than others, so a second of them is held to the quota, which the headroom protects.
    if storage == "memory":
        uri = "memory://"
    else:
        server = request.getfixturevalue("redis_server")
        server.flush()
        uri = server.uri
    limiters: list[RateLimiter] = [
        RateLimiter(
            20,
            headroom=0.10,
            window=shared_quota.SharedQuotaWindow(
                storage_uri=uri, key="AKID@endpoint", action=DESCRIBE, headroom=0.10
            ),
        )
        for _ in range(3)
    ]

    grants = _hammer_from_threads(limiters, calls_each=3)

    assert (len(grants), busiest_window(grants) <= QUOTA) == (36, True)


@needs_limits
@pytest.mark.asyncio
async def test_coroutines_wait_for_the_shared_window_without_blocking_the_event_loop(redis_server):
    redis_server.flush()
    limiters = [
        RateLimiter(
            20,
            headroom=0.10,
            window=shared_quota.SharedQuotaWindow(
                storage_uri=redis_server.uri, key="AKID@loop", action=DESCRIBE, headroom=0.10
            ),
        )
        for _ in range(2)
    ]
    grants: list[float] = []
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def call(limiter: RateLimiter) -> None:
        await limiter.aacquire()
        grants.append(time.time())

    ticking = asyncio.create_task(ticker())
    await asyncio.gather(*(call(limiters[i % 2]) for i in range(30)))
    stop.set()
    await ticking

    # 30 grants at 18 slots per window take over a second, during which the loop kept ticking.
    assert (len(grants), busiest_window(grants) <= QUOTA, ticks > 10) == (30, True, True)
