"""
One account quota across a distributed deployment: per-process shares against the shared budget.

Each mode runs in its own fresh deployment of ``tests/distributed/deployment.py``: CeleryExecutor
on PostgreSQL and Redis, **2 Celery workers and 2 triggerers**, against the MPS emulator in its own
process at the real quota of 20 requests per second per action (a token bucket: bursts of 20 pass,
more is refused with ``RequestLimitExceeded``).  The modes:

* ``per_process``: every process keeps the default share, the whole quota (what a deployment gets
  when nobody sizes ``[tencentcloud_mps] quota_share``);
* ``per_process_sized``: every process gets ``quota_share = 20 / 4`` (2 workers running one MPS
  task each + 2 triggerers), as ``docs/connection.md`` says to size it;
* ``shared``: ``[tencentcloud_mps] quota_storage_uri`` on the deployment's Redis.

Two workloads, one after the other, in each mode:

1. ``batch``: two batch DAG runs at once, one on each worker (``--prompts`` in all, half each).
   Wall time: the first create to the last successful one at the emulator, over ``N / 20`` s.
2. ``waiting``: ``--deferred`` deferrable single operators, mapped, waiting over both triggerers
   (each MPS task runs ``--run-seconds``, polled every 2 s).

For each: the busiest one-second window of that action at the emulator, and its
``RequestLimitExceeded`` count.  Run: ``.venv/bin/python -m bench.distributed`` (needs
``scripts/setup-distributed.sh``; ``--tiny`` for a quick check).  It appends nothing by itself:
``--markdown PATH`` writes the section that goes into ``bench/RESULTS.md``.
"""

from __future__ import annotations

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
    start_figures,
)

CREATE, DESCRIBE = "CreateAigcImageTask", "DescribeAigcImageTask"
MODES: dict[str, dict[str, Any]] = {
    "per_process": {"shared_quota": False, "quota_share": None},
    "per_process_sized": {"shared_quota": False, "quota_share": QUOTA / 4},
    "shared": {"shared_quota": True, "quota_share": None},
}
BATCH_DAGS = ("distributed_batch_worker_1", "distributed_batch_worker_2")
DEFERRED_DAG = "distributed_deferred"


def action_figures(requests: list[dict[str, Any]], action: str, since: float) -> dict[str, Any]:
    """Busiest second, refusals and the first-to-last span of successful ``action`` calls since ``since``."""
    mine = [r for r in requests if r["Action"] == action and r["Time"] >= since]
    ok = sorted(r["Time"] for r in mine if not r["ErrorCode"])
    return {
        "busiest_second": max_per_second([r["Time"] for r in mine])[0],
        "refused": sum(1 for r in mine if str(r["ErrorCode"] or "").startswith("RequestLimitExceeded")),
        "calls": len(mine),
        "span_s": (ok[-1] - ok[0]) if len(ok) > 1 else 0.0,
        "succeeded": len(ok),
    }


def wait_for_runs(cluster: Any, runs: list[tuple[str, str]], *, timeout: float) -> list[str]:
    """Poll the runs every 2 s until all finish; their final states."""
    deadline = time.monotonic() + timeout
    states: dict[tuple[str, str], str] = {}
    while time.monotonic() < deadline:
        for dag_id, run_id in runs:
            if states.get((dag_id, run_id)) not in ("success", "failed"):
                try:
                    states[(dag_id, run_id)] = cluster.dag_run(dag_id, run_id)["state"]
                except Exception:  # a loaded API server may miss one poll
                    continue
        if all(states.get(run) in ("success", "failed") for run in runs):
            break
        time.sleep(2)
    return [states.get(run, "unfinished") for run in runs]


def run_mode(mode: str, *, prompts: int, deferred: int, run_seconds: float) -> dict[str, Any]:
    """Start a deployment in ``mode``, run both workloads, return their figures."""
    sys.path.insert(0, str(REPO_ROOT))
    from tests.distributed.deployment import Deployment

    result: dict[str, Any] = {}
    with (
        EmulatorProcess(rate_limit=QUOTA, wait_seconds=0.2, run_seconds=0.3) as emulator,
        tempfile.TemporaryDirectory(prefix=f"mps-bench-distributed-{mode}-") as folder,
    ):
        started = time.perf_counter()
        with Deployment(
            Path(folder), mps_connection=emulator.airflow_connection(), triggerer_capacity=1000, **MODES[mode]
        ) as deployment:
            cluster = deployment.cluster
            cluster.wait_for_dags([*BATCH_DAGS, DEFERRED_DAG], timeout=300)
            for dag_id in (*BATCH_DAGS, DEFERRED_DAG):
                cluster.unpause(dag_id)
            result["start_s"] = time.perf_counter() - started

            since = time.time()
            t0 = time.perf_counter()
            half = prompts // 2
            runs = [
                (dag_id, cluster.trigger(dag_id, {"count": half, "label": dag_id})) for dag_id in BATCH_DAGS
            ]
            result["batch_states"] = wait_for_runs(cluster, runs, timeout=1200)
            result["batch_runs_wall_s"] = time.perf_counter() - t0
            result["batch"] = action_figures(emulator.requests(), CREATE, since)
            result["batch_describes"] = action_figures(emulator.requests(), DESCRIBE, since)

            emulator.configure(run_seconds=run_seconds)
            since = time.time()
            t0 = time.perf_counter()
            run_id = cluster.trigger(DEFERRED_DAG, {"count": deferred, "label": "waiting"})
            result["waiting_state"] = wait_for_runs(cluster, [(DEFERRED_DAG, run_id)], timeout=1800)[0]
            result["waiting_wall_s"] = time.perf_counter() - t0
            result["waiting"] = action_figures(emulator.requests(), DESCRIBE, since)
            result["waiting_creates"] = action_figures(emulator.requests(), CREATE, since)
    return result


def markdown(figures: Figures, results: dict[str, dict[str, Any]], prompts: int, deferred: int) -> str:
    """The ``distributed`` section of ``bench/RESULTS.md``."""
    bound = prompts / QUOTA
    lines = [
        "## distributed",
        "",
        f"Produced by `.venv/bin/python -m bench.distributed` on {time.strftime('%Y-%m-%d %H:%M UTC')}: "
        f"2 Celery workers and 2 triggerers (PostgreSQL, Redis), emulator quota {QUOTA:g}/s per action. "
        f"Batch: two runs of {prompts // 2} prompts at once, one per worker (N = {prompts}, "
        f"N/20 = {bound:g} s). Waiting: {deferred} deferred single operators over both triggerers.",
        "",
        "| Mode | Batch: busiest second (creates) | Batch: `RequestLimitExceeded` | Batch wall / (N/20) "
        "| Waiting: busiest second (describes) | Waiting: `RequestLimitExceeded` | Runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, result in results.items():
        batch, waiting = result["batch"], result["waiting"]
        states = sorted(set(result["batch_states"]) | {result["waiting_state"]})
        lines.append(
            f"| `{mode}` | {batch['busiest_second']} | {batch['refused']} | {batch['span_s'] / bound:.3f} "
            f"| {waiting['busiest_second']} | {waiting['refused']} | {', '.join(states)} |"
        )
    lines += ["", "Targets (shared mode): busiest second <= 20, batch wall <= 1.10 x N/20 s."]
    lines += [f"- {note}" for note in figures.notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--prompts", type=int, default=600, help="batch prompts in all (half per worker)")
    parser.add_argument("--deferred", type=int, default=100, help="deferred single operators")
    parser.add_argument("--run-seconds", type=float, default=20.0, help="how long each waited MPS task runs")
    parser.add_argument("--modes", default=",".join(MODES), help="which of " + ",".join(MODES))
    parser.add_argument("--markdown", default=None, help="write the RESULTS.md section to this file")
    args = parser.parse_args(argv)
    prompts, deferred = (20, 6) if args.tiny else (args.prompts, args.deferred)
    run_seconds = 2.0 if args.tiny else args.run_seconds
    figures = start_figures("distributed", prompts=prompts, deferred=deferred)
    results: dict[str, dict[str, Any]] = {}
    for mode in args.modes.split(","):
        result = results[mode] = run_mode(mode, prompts=prompts, deferred=deferred, run_seconds=run_seconds)
        for workload in ("batch", "batch_describes", "waiting", "waiting_creates"):
            for key, value in result[workload].items():
                figures.record(f"{mode}.{workload}.{key}", value)
        for key in ("start_s", "batch_runs_wall_s", "waiting_wall_s", "batch_states", "waiting_state"):
            figures.record(f"{mode}.{key}", result[key])
        figures.ratio(
            f"{mode}.batch_busiest_second_over_quota",
            result["batch"]["busiest_second"] / QUOTA,
            1.0 if mode == "shared" else None,
            what="most creates in one second at the emulator, over the quota",
        )
        figures.ratio(
            f"{mode}.batch_wall_over_quota_bound",
            result["batch"]["span_s"] / (prompts / QUOTA),
            1.10 if mode == "shared" else None,
            what="first to last successful create at the emulator, over N/20 s",
        )
        figures.ratio(
            f"{mode}.waiting_busiest_second_over_quota",
            result["waiting"]["busiest_second"] / QUOTA,
            1.0 if mode == "shared" else None,
            what="most describes in one second at the emulator, over the quota",
        )
    figures.write(args.json)
    if args.markdown:
        Path(args.markdown).write_text(markdown(figures, results, prompts, deferred))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
