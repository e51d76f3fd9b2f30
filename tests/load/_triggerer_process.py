"""
A triggerer's event loop with N ``MpsAigcImageTaskTrigger`` instances, run as its own process.

``python _triggerer_process.py <input.json> <output.json>``; the input holds ``mps_task_ids``,
``mps_conn_id``, ``poll_interval`` and ``timeout``.  Each trigger runs the way Airflow's
``TriggerRunner.run_trigger`` runs it: as its own asyncio task in one event loop, with a greenback
portal, iterating ``trigger.run()`` until the first event, then ``trigger.cleanup()``.  (Connection
lookups read ``AIRFLOW_CONN_<ID>`` from the environment instead of asking the triggerer's
supervisor.)  A watchdog measures how late the loop wakes up, as the triggerer's
``block_watchdog`` does, and a sampler records this process's memory.

The output holds every event, the resident memory before the triggers were created and at its
peak, the CPU time spent while they ran, the wall time and the worst event-loop lag.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import greenback
import psutil

from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

SAMPLE_SECONDS = 0.25


async def run_trigger(trigger: MpsAigcImageTaskTrigger, events: list[dict[str, Any]]) -> None:
    await greenback.ensure_portal()
    try:
        async for event in trigger.run():
            events.append({**event.payload, "fired_at": time.time()})
            break
    finally:
        await trigger.cleanup()


async def watch(process: psutil.Process, stats: dict[str, float], done: asyncio.Event) -> None:
    while not done.is_set():
        started = time.monotonic()
        await asyncio.sleep(SAMPLE_SECONDS)
        stats["max_loop_lag"] = max(stats["max_loop_lag"], time.monotonic() - started - SAMPLE_SECONDS)
        stats["peak_rss"] = max(stats["peak_rss"], process.memory_info().rss)


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    process = psutil.Process()
    baseline_rss = process.memory_info().rss
    cpu_before = process.cpu_times()
    started = time.time()
    end_time = started + spec["timeout"]
    triggers = [
        MpsAigcImageTaskTrigger(
            mps_task_id=task_id,
            mps_conn_id=spec["mps_conn_id"],
            poll_interval=spec["poll_interval"],
            end_time=end_time,
        )
        for task_id in spec["mps_task_ids"]
    ]
    events: list[dict[str, Any]] = []
    stats = {"max_loop_lag": 0.0, "peak_rss": float(baseline_rss)}
    done = asyncio.Event()
    watcher = asyncio.create_task(watch(process, stats, done))
    tasks = [asyncio.create_task(run_trigger(trigger, events)) for trigger in triggers]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    done.set()
    await watcher
    cpu_after = process.cpu_times()
    return {
        "events": events,
        "errors": [repr(result) for result in results if isinstance(result, BaseException)],
        "started": started,
        "finished": time.time(),
        "baseline_rss": baseline_rss,
        "peak_rss": stats["peak_rss"],
        "cpu_seconds": (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system),
        "max_loop_lag": stats["max_loop_lag"],
    }


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    outcome = asyncio.run(main(spec))
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        json.dump(outcome, out)
