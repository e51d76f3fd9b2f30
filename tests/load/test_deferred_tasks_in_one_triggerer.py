"""
Deferred MPS tasks by the hundred in one triggerer: all complete, none lost, the describe quota held.

The emulator enforces the service's quota (20 requests per second per action and account).  The
MPS tasks are created first (quota off for the set-up), then one process runs one
``MpsAigcImageTaskTrigger`` per task in one event loop, as Airflow's triggerer does (see
``_triggerer_process.py``; the real triggerer is not used: scheduling hundreds of deferring tasks
through workers would take far longer than the wait itself on a small machine).  Every trigger
shares the process-wide limiter of the account, so the emulator should never see more than 20
describes in any one-second window, and should refuse none; every trigger must fire one
``success`` event for its own task.  The tasks stay ``RUN`` until the emulator has answered a set
number of describes (every trigger stays deferred over several polls, however fast the machine),
then all turn ``DONE``.  The triggerer's memory and CPU per deferred task, and its
worst event-loop lag, are printed at the end of the session.

Sizes: 100 triggers run with ``make test``; 500 are marked ``heavy`` (``make test-heavy``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV, EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.load.conftest import LOAD_REPORT
from tests.windows import max_in_any_window

QUOTA = 20
DESCRIBE = "DescribeAigcImageTask"


@dataclass(frozen=True)
class LoadSize:
    """
    One load run.

    :param tasks: deferred tasks (triggers).
    :param poll_interval: the triggers' poll interval; tasks / poll_interval exceeds the quota.
    :param done_after: the MPS tasks stay ``RUN`` until the emulator has answered this many
        describes, then all turn ``DONE``.
    """

    tasks: int
    poll_interval: float
    done_after: int


SIZES = [
    pytest.param(LoadSize(tasks=100, poll_interval=2.0, done_after=200), id="100-triggers"),
    pytest.param(
        LoadSize(tasks=500, poll_interval=10.0, done_after=500), id="500-triggers", marks=pytest.mark.heavy
    ),
]


@dataclass
class LoadRun:
    size: LoadSize
    task_ids: list[str]
    tasks: dict[str, dict[str, Any]]
    describes: list[dict[str, Any]]
    outcome: dict[str, Any]

    @property
    def busiest_second(self) -> int:
        return max_in_any_window([request["Time"] for request in self.describes])


def _create_tasks(emulator: EmulatorHandle, count: int) -> list[str]:
    """Create ``count`` MPS tasks through the hook (the emulator's quota is off meanwhile)."""
    from airflow_provider_mps.hooks.mps import MpsHook

    os.environ[CONNECTION_ENV] = emulator.airflow_connection()
    try:
        hook = MpsHook()
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(
                pool.map(lambda n: hook.create_aigc_image_task(prompt=f"load test image {n}"), range(count))
            )
    finally:
        del os.environ[CONNECTION_ENV]


@pytest.fixture(scope="module", params=SIZES)
def load_run(
    request: pytest.FixtureRequest, airflow_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> LoadRun:
    """Create the tasks, run the triggerer process until every trigger fired, read both sides."""
    size: LoadSize = request.param
    root = tmp_path_factory.mktemp(f"load-{size.tasks}")
    server = ThreadedEmulatorServer(port=0, rate_limit=0, wait_seconds=1, run_seconds=3600)
    server.start()
    finisher: threading.Thread | None = None
    try:
        emulator = EmulatorHandle.from_server(server)
        task_ids = _create_tasks(emulator, size.tasks)
        emulator.configure(rate_limit=QUOTA)
        finisher = threading.Thread(
            target=_finish_after, args=(server, task_ids, size.done_after), daemon=True
        )
        finisher.start()
        spec = {
            "mps_task_ids": task_ids,
            "mps_conn_id": "tencentcloud_mps_default",
            "poll_interval": size.poll_interval,
            "timeout": 600,
        }
        (root / "spec.json").write_text(json.dumps(spec))
        with (root / "triggerer.log").open("w") as log:
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).with_name("_triggerer_process.py")),
                    str(root / "spec.json"),
                    str(root / "outcome.json"),
                ],
                env={**os.environ, CONNECTION_ENV: emulator.airflow_connection()},
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=True,
            )
        finisher.join(timeout=30)
        describes = [r for r in emulator.requests() if r["Action"] == DESCRIBE]
        run = LoadRun(
            size=size,
            task_ids=task_ids,
            tasks={task["TaskId"]: task for task in emulator.tasks()},
            describes=describes,
            outcome=json.loads((root / "outcome.json").read_text()),
        )
    finally:
        server.stop()
    (root / "describes.json").write_text(json.dumps(describes))
    LOAD_REPORT.append(_figures(run))
    return run


def _finish_after(server: ThreadedEmulatorServer, task_ids: list[str], describes: int) -> None:
    """Mark every task DONE once the emulator has answered ``describes`` describe calls."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if sum(r["Action"] == DESCRIBE for r in server.backend.requests()) >= describes:
            break
        time.sleep(0.2)
    for task_id in task_ids:
        server.backend.force_status(task_id, "DONE")


def _figures(run: LoadRun) -> dict[str, Any]:
    outcome, tasks = run.outcome, run.size.tasks
    duration = outcome["finished"] - outcome["started"]
    cpu = outcome["cpu_seconds"]
    return {
        "deferred tasks (triggers in one event loop)": tasks,
        "poll_interval (s) / tasks DONE after (describes)": (
            f"{run.size.poll_interval:g} / {run.size.done_after}"
        ),
        "describes sent / refused (RequestLimitExceeded)": (
            f"{len(run.describes)} / {sum(r['ErrorCode'] == 'RequestLimitExceeded' for r in run.describes)}"
        ),
        "busiest 1 s window (quota 20)": run.busiest_second,
        "mean describe rate (requests/s)": round(len(run.describes) / duration, 2),
        "wall time until the last event (s)": round(duration, 1),
        "triggerer RSS before / at peak (MiB)": (
            f"{outcome['baseline_rss'] / 2**20:.0f} / {outcome['peak_rss'] / 2**20:.0f}"
        ),
        "memory per deferred task (KiB)": round(
            (outcome["peak_rss"] - outcome["baseline_rss"]) / tasks / 1024
        ),
        "CPU per deferred task / per describe (ms)": (
            f"{cpu / tasks * 1000:.1f} / {cpu / max(1, len(run.describes)) * 1000:.1f}"
        ),
        "worst event-loop lag (s)": round(outcome["max_loop_lag"], 3),
    }


def test_max_in_any_window_counts_a_sliding_window():
    assert max_in_any_window([0.0, 0.5, 0.99, 1.0, 1.2, 1.3, 1.5]) == 5
    assert max_in_any_window([0.0, 1.0, 2.0]) == 1
    assert max_in_any_window([]) == 0


def test_every_trigger_fires_one_success_event_for_its_own_task_and_none_is_lost(load_run):
    events = load_run.outcome["events"]

    assert load_run.outcome["errors"] == []
    assert sorted(event["mps_task_id"] for event in events) == sorted(load_run.task_ids)
    assert {event["status"] for event in events} == {"success"}
    assert all(
        event["result"]["ImageUrls"] == load_run.tasks[event["mps_task_id"]]["ImageUrls"] for event in events
    )
    assert {load_run.tasks[task_id]["Status"] for task_id in load_run.task_ids} == {"DONE"}
    # Every trigger stayed deferred until the tasks were DONE, then polled once more to see it.
    assert len(load_run.describes) >= load_run.size.done_after + len(load_run.task_ids)


def test_the_shared_limiter_holds_the_mean_describe_rate_at_the_quota(load_run):
    # The triggers ask for more (tasks / poll_interval = 50 describes/s); the shared limiter holds them to 20.
    duration = load_run.outcome["finished"] - load_run.outcome["started"]

    assert len(load_run.describes) / duration <= QUOTA


def test_no_one_second_window_holds_more_describes_than_the_quota_and_none_is_refused(load_run):
    refused = [r for r in load_run.describes if r["ErrorCode"] is not None]

    assert (load_run.busiest_second <= QUOTA, refused) == (True, [])
