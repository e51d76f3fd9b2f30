"""
Triggers of one event loop start a few at a time, so a thousand starting at once never hold the loop.

Airflow's triggerer calls a trigger badly written when its loop is held over 0.2 s.  Each start
(hook, connection, SDK client) passes a per-loop gate of ``STARTS_AT_ONCE``, so the starts of a
crowd are spread over many turns of the loop.  The real triggerer's log is checked under load by
``tests/load/test_real_triggerer.py`` (``make test-heavy``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.triggers import _polling
from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

TRIGGERS = 40


def test_triggers_starting_together_pass_the_start_gate_a_few_at_a_time(mps_conn, monkeypatch):
    mps_task_id = MpsHook().create_aigc_image_task(prompt="A crowd of triggers")
    starting: set[int] = set()
    started: set[int] = set()
    most = 0
    real_aget_conn = MpsHook.aget_conn

    async def slow_first_aget_conn(self: MpsHook) -> Any:
        """The hook's first ``aget_conn`` is its start: count how many run at once."""
        nonlocal most
        if id(self) in started:
            return await real_aget_conn(self)
        started.add(id(self))
        starting.add(id(self))
        most = max(most, len(starting))
        try:
            await asyncio.sleep(0.01)
            return await real_aget_conn(self)
        finally:
            starting.discard(id(self))

    monkeypatch.setattr(MpsHook, "aget_conn", slow_first_aget_conn)
    triggers = [
        MpsAigcImageTaskTrigger(
            mps_task_id=mps_task_id,
            mps_conn_id="tencentcloud_mps_default",
            poll_interval=0.05,
            end_time=time.time() + 30,
        )
        for _ in range(TRIGGERS)
    ]

    async def first_event(trigger: MpsAigcImageTaskTrigger) -> dict[str, Any]:
        try:
            async for event in trigger.run():
                return dict(event.payload)
        finally:
            await trigger.cleanup()
        raise AssertionError("no event")

    async def main() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(first_event(trigger) for trigger in triggers)))

    events = asyncio.run(main())

    assert [event["status"] for event in events] == ["success"] * TRIGGERS
    assert len(started) == TRIGGERS
    assert most == _polling.STARTS_AT_ONCE
