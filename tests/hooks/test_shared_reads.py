"""
One connection read per connection and event loop serves every hook starting meanwhile.

A triggerer starting a thousand triggers of one connection used to read it a thousand times on
its event loop.  :func:`~airflow_provider_mps.hooks._shared_reads.shared_read` reads once for all
the callers on one loop while the read runs and for ``FRESH_SECONDS`` after; a failed read is not
kept, and loops never share a read.  The hook reads through it (``MpsHook._asettings``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_provider_mps.hooks import _shared_reads, mps as mps_hook_module
from airflow_provider_mps.hooks.mps import MpsHook


@pytest.fixture(autouse=True)
def no_reads_left():
    _shared_reads.forget()
    yield
    _shared_reads.forget()


class CountingRead:
    """A read that takes ``seconds`` and returns a new object each time (or fails when told)."""

    def __init__(self, seconds: float = 0.01) -> None:
        self.seconds = seconds
        self.calls = 0
        self.fail = False

    async def __call__(self) -> object:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise LookupError(f"read {self.calls} failed")
        return object()


def test_callers_on_one_loop_share_one_read():
    read = CountingRead()

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(_shared_reads.shared_read("conn", read) for _ in range(200))))

    results = asyncio.run(main())

    assert read.calls == 1
    assert len({id(result) for result in results}) == 1


def test_keys_are_read_separately_and_loops_never_share_a_read():
    read = CountingRead()

    async def main() -> list[Any]:
        return list(await asyncio.gather(*(_shared_reads.shared_read(key, read) for key in ("a", "b"))))

    first_a, first_b = asyncio.run(main())
    second_a, _ = asyncio.run(main())

    assert read.calls == 4
    assert len({id(first_a), id(first_b), id(second_a)}) == 3


def test_a_failed_read_fails_its_waiters_and_is_not_kept():
    read = CountingRead()
    read.fail = True

    async def main() -> tuple[list[Any], object]:
        failed = await asyncio.gather(
            *(_shared_reads.shared_read("conn", read) for _ in range(3)), return_exceptions=True
        )
        read.fail = False
        return failed, await _shared_reads.shared_read("conn", read)

    failed, later = asyncio.run(main())

    assert [str(error) for error in failed] == ["read 1 failed"] * 3
    assert read.calls == 2
    assert later is not None


def test_a_read_serves_for_fresh_seconds_then_the_connection_is_read_anew(monkeypatch):
    monkeypatch.setattr(_shared_reads, "FRESH_SECONDS", 0.2)
    read = CountingRead(seconds=0)

    async def main() -> list[Any]:
        first = await _shared_reads.shared_read("conn", read)
        served = await _shared_reads.shared_read("conn", read)
        await asyncio.sleep(0.3)
        return [first, served, await _shared_reads.shared_read("conn", read)]

    first, served, later = asyncio.run(main())

    assert read.calls == 2
    assert served is first
    assert later is not first


def test_a_caller_cancelled_while_waiting_does_not_cancel_the_read_of_the_others():
    read = CountingRead(seconds=0.05)

    async def main() -> object:
        impatient = asyncio.ensure_future(_shared_reads.shared_read("conn", read))
        patient = asyncio.ensure_future(_shared_reads.shared_read("conn", read))
        await asyncio.sleep(0.01)
        impatient.cancel()
        return await patient

    assert asyncio.run(main()) is not None
    assert read.calls == 1


def test_hooks_starting_together_read_the_connection_once_and_log_the_credential_once(
    mps_conn, monkeypatch, hook_logs
):
    lookups: list[str] = []
    real_lookup = mps_hook_module.get_async_connection

    async def counting_lookup(conn_id: str, hook: Any = None) -> Any:
        lookups.append(conn_id)
        return await real_lookup(conn_id, hook)

    monkeypatch.setattr(mps_hook_module, "get_async_connection", counting_lookup)
    hooks = [MpsHook() for _ in range(50)]

    async def main() -> list[str]:
        try:
            return list(await asyncio.gather(*(hook.arate_limit_key() for hook in hooks)))
        finally:
            for hook in hooks:
                await hook.aclose()

    keys = asyncio.run(main())

    assert lookups == ["tencentcloud_mps_default"]
    assert set(keys) == {f"{mps_conn.secret_id}@{mps_conn.endpoint}"}
    using = [record for record in hook_logs if record["event"].startswith("Using Tencent Cloud credentials")]
    # Once per read, not per hook: a thousand triggers starting together flood no log.
    assert len(using) == 1
