"""
Waiting: N MPS tasks waited on by triggers in one triggerer-like event loop, at the real quota.

Setup (not measured): N tasks are created on the emulator with its quota off, each set never to
finish on its own; then the quota is set to 20 requests/s.  A separate process turns the tasks
``DONE`` at times spread evenly over ``--spread`` seconds, recording when.  Meanwhile this process
runs the triggers in one asyncio loop, as Airflow's triggerer does:

1. ``single``: one ``MpsAigcImageTaskTrigger`` per task (what N deferred single operators cost);
2. ``batch``: one ``MpsAigcImageBatchTrigger`` for all N tasks (what one deferred batch costs).

Figures: describe requests per second seen by the emulator (never above the quota, and no
``RequestLimitExceeded``), detection latency (event time minus the time the task turned DONE)
against the target of one poll interval plus 1 s, and memory per task (RSS growth / N).

Sizing rule the figures show: with N tasks per account, each is polled at best every N / 18 s
(the limiter sends at the quota less 10 % headroom), so the latency target holds when
``poll_interval >= N / 18``.

Run: ``.venv/bin/python -m bench.waiting`` (``--tiny`` for a quick check).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import (
    QUOTA,
    REPO_ROOT,
    EmulatorProcess,
    Figures,
    base_parser,
    max_per_second,
    median,
    start_figures,
    use_emulator_connection,
)

#: Tasks set never to finish on their own: only the forcing process turns them DONE.
NEVER = 10_000_000.0


def force_schedule_main(path: str) -> int:
    """The forcing process: turn each task DONE at its time, then write down when each was done."""
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle

    plan = json.loads(Path(path).read_text())
    handle = EmulatorHandle(plan["endpoint"], plan["secret_id"], "unused")
    done: dict[str, float] = {}
    for task_id, at in sorted(plan["schedule"].items(), key=lambda item: item[1]):
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        # The time *before* the call: a latency measured from it can only be overstated.
        done[task_id] = time.time()
        handle.force_status(task_id, "DONE")
    Path(plan["result"]).write_text(json.dumps(done))
    return 0


def create_tasks(count: int) -> list[str]:
    from airflow_provider_mps.hooks.mps import MpsHook

    hook = MpsHook()
    return [hook.create_aigc_image_task(prompt=f"Catalogue item {n}") for n in range(count)]


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


#: How often the event-loop watchdog wakes; its lateness is the loop's lag.
LAG_TICK = 0.1


async def run_triggers(
    triggers: list[Any], peak: list[int], lag: list[float]
) -> list[tuple[float, dict[str, Any]]]:
    """
    Run ``triggers`` in this loop until each fires; return (time fired, payload) per trigger.

    :param peak: holds the highest RSS sampled, in bytes.
    :param lag: holds the worst lateness of a :data:`LAG_TICK` watchdog sleep, in seconds: how
        long the loop was held by something else (the figure a triggerer's heartbeat suffers).
    """

    async def one(trigger: Any) -> tuple[float, dict[str, Any]]:
        try:
            async for event in trigger.run():
                return time.time(), event.payload
        finally:
            await trigger.cleanup()
        raise RuntimeError("A trigger ended without an event.")

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss())
            await asyncio.sleep(0.5)

    async def watchdog() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_TICK)
            lag[0] = max(lag[0], time.monotonic() - before - LAG_TICK)

    samplers = [asyncio.create_task(sample()), asyncio.create_task(watchdog())]
    try:
        return list(await asyncio.gather(*(one(trigger) for trigger in triggers)))
    finally:
        for sampler in samplers:
            sampler.cancel()


class GcPauses:
    """The longest garbage collection while in use (a collection holds the event loop too)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.longest = max(self.longest, time.perf_counter() - self._began)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self)


def phase(
    kind: str, handle: Any, figures: Figures, *, count: int, poll_interval: float, spread: float, delay: float
) -> None:
    from airflow_provider_mps.core.api import DESCRIBE_ACTION
    from airflow_provider_mps.triggers.mps import MpsAigcImageBatchTrigger, MpsAigcImageTaskTrigger
    from airflow_provider_mps.utils.rate_limit import clear_rate_limiters, headroom_for

    clear_rate_limiters()
    handle.configure(rate_limit=0, wait_seconds=NEVER, run_seconds=0)
    task_ids = create_tasks(count)
    handle.configure(rate_limit=QUOTA)
    gc.collect()
    baseline = rss()
    start = time.time()
    end_time = start + delay + spread + 10 * poll_interval + count / QUOTA * 3 + 60
    if kind == "single":
        triggers: list[Any] = [
            MpsAigcImageTaskTrigger(
                mps_task_id=task_id,
                mps_conn_id="tencentcloud_mps_default",
                poll_interval=poll_interval,
                end_time=end_time,
                rate_limit=QUOTA,
            )
            for task_id in task_ids
        ]
    else:
        triggers = [
            MpsAigcImageBatchTrigger(
                mps_task_ids=task_ids,
                mps_conn_id="tencentcloud_mps_default",
                poll_interval=poll_interval,
                end_time=end_time,
                rate_limit=QUOTA,
            )
        ]
    with tempfile.TemporaryDirectory(prefix="mps-bench-wait-") as folder:
        plan = Path(folder) / "plan.json"
        result = Path(folder) / "done.json"
        plan.write_text(
            json.dumps(
                {
                    "endpoint": handle.endpoint,
                    "secret_id": handle.secret_id,
                    "result": str(result),
                    "schedule": {
                        task_id: start + delay + spread * n / max(count - 1, 1)
                        for n, task_id in enumerate(task_ids)
                    },
                }
            )
        )
        forcer = subprocess.Popen(
            [sys.executable, "-m", "bench.waiting", "--force-schedule", str(plan)], cwd=REPO_ROOT
        )
        peak, lag = [baseline], [0.0]
        try:
            with GcPauses() as pauses:
                fired = asyncio.run(run_triggers(triggers, peak, lag))
        finally:
            forcer.wait(timeout=spread + delay + 120)
        done_at = json.loads(result.read_text())
    finished = time.time()

    statuses = [payload["status"] for _, payload in fired]
    if kind == "single":
        detected = {payload["mps_task_id"]: at for at, payload in fired}
        # Per task: from the moment it turned DONE to the moment its trigger fired.
        latencies = [detected[task_id] - done_at[task_id] for task_id in task_ids]
    else:
        # One event for the whole batch: from the moment the last task turned DONE to the event.
        latencies = [fired[0][0] - max(done_at.values())]
    describes = [
        call
        for call in handle.requests()
        if call["Action"] == "DescribeAigcImageTask" and start <= call["Time"] <= finished
    ]
    name = f"{kind}"
    figures.record(f"{name}.tasks", count)
    figures.record(f"{name}.triggers", len(triggers))
    figures.record(f"{name}.poll_interval_s", poll_interval, "s")
    figures.record(f"{name}.events_not_success", sum(status != "success" for status in statuses))
    figures.record(f"{name}.wall_s", finished - start, "s")
    figures.record(f"{name}.describe_calls", len(describes))
    figures.record(f"{name}.describe_rate_mean_per_s", len(describes) / max(finished - start, 1e-9), "/s")
    busiest, busiest_at = max_per_second([call["Time"] for call in describes])
    figures.record(f"{name}.describe_max_in_any_1s", busiest)
    figures.record(f"{name}.describe_max_in_any_1s_began_after_s", (busiest_at or start) - start, "s")
    figures.record(
        f"{name}.request_limit_exceeded",
        sum(1 for call in describes if call["ErrorCode"] == "RequestLimitExceeded"),
    )
    ordered = sorted(latencies)
    if kind == "single":
        figures.record(f"{name}.latency_median_s", median(latencies), "s")
        figures.record(f"{name}.latency_p90_s", ordered[int(0.9 * (len(ordered) - 1))], "s")
    figures.record(f"{name}.latency_max_s", ordered[-1], "s")
    figures.record(f"{name}.rss_growth_mb", (peak[0] - baseline) / 2**20, "MB")
    # Sampled every 0.5 s: a short peak between samples is missed, so this is a lower bound.
    figures.record(f"{name}.rss_per_task_kb", (peak[0] - baseline) / count / 1024, "KB")
    figures.record(f"{name}.event_loop_lag_max_s", lag[0], "s")
    # The loop cannot run during a collection: a lag up to this long is the collector's.
    figures.record(f"{name}.gc_pause_max_s", pauses.longest, "s")
    # The physical limit: one describe per task at the rate the limiter sends (the quota less its
    # headroom, 18/s), so a round of N tasks takes N / 18 s.
    sent_rate = QUOTA * (1 - headroom_for(DESCRIBE_ACTION))
    bound = max(poll_interval, count / sent_rate) + 1.0
    figures.ratio(
        f"{name}.latency_max_over_physical_bound",
        ordered[-1] / bound,
        1.0,
        what=f"worst detection latency / (max(poll interval, N / {sent_rate:g} s) + 1 s), N = {count}",
    )
    figures.ratio(
        f"{name}.latency_max_over_poll_interval_plus_1s",
        ordered[-1] / (poll_interval + 1.0),
        1.0,
        what=(
            f"worst detection latency / (poll interval + 1 s), {count} tasks, one trigger each"
            if kind == "single"
            else f"last task DONE to the batch's event / (poll interval + 1 s), {count} tasks, one trigger"
        ),
    )
    figures.ratio(
        f"{name}.describe_peak_1s_over_quota",
        busiest / QUOTA,
        what="most describe requests the emulator received in any one-second window / quota",
    )
    if busiest > QUOTA + 1:
        # Paced exactly at the quota, a one-second window holds 20 calls, 21 with send jitter.
        figures.note(
            f"{name}: {busiest} describe calls reached the emulator within one second, "
            f"{(busiest_at or start) - start:.1f} s after the start: calls paced for later slots went out "
            "together after the event loop stalled (the emulator's token bucket, like the service's "
            "quota, allows a burst of 20 and refused none)."
        )
    figures.ratio(
        f"{name}.describe_rate_over_quota",
        len(describes) / max(finished - start, 1e-9) / QUOTA,
        1.0,
        what="describe requests per second over the whole run / quota",
    )


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks waited on")
    parser.add_argument("--poll-interval", type=float, default=60.0, help="seconds between polls of a task")
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which tasks turn DONE")
    parser.add_argument("--phases", default="single,batch", help="which of single,batch to run")
    parser.add_argument("--force-schedule", default=None, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.force_schedule:
        return force_schedule_main(args.force_schedule)
    count, poll_interval, spread, delay = (
        (20, 1.0, 2.0, 0.5) if args.tiny else (args.tasks, args.poll_interval, args.spread, 5.0)
    )
    figures = start_figures("waiting")
    with EmulatorProcess(rate_limit=QUOTA) as handle:
        use_emulator_connection(handle)
        for kind in args.phases.split(","):
            phase(kind, handle, figures, count=count, poll_interval=poll_interval, spread=spread, delay=delay)
    figures.write(args.json)
    return 0


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    sys.exit(main())
