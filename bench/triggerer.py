"""
Triggerer: a real Airflow triggerer's blocked-loop warnings with N MPS triggers, beside N of Airflow's own.

Airflow's triggerer logs "Triggerer's async thread was blocked for N seconds ... likely caused by
a badly-written trigger" when its event loop wakes more than 0.2 s late.  This runs a real
deployment (scheduler, triggerer, DAG processor and API server, as in the integration tests)
twice, one after the other on this machine, each time deferring N mapped tasks straight to the
triggerer (``start_from_trigger``, ``tests/load/dags/mps_many_deferred.py``):

1. ``airflow``: Airflow's own ``DateTimeTrigger``, idle until the year 2100 (the baseline: what
   the triggerer costs by itself with N triggers);
2. ``mps``: ``MpsAigcImageTaskTrigger`` polling one MPS task of the emulator (at the service's
   quota, 20 describes per second) that never finishes.

Each run counts the warnings in the triggerer's log from the moment the run is triggered until
:data:`OBSERVE_SECONDS` after all N tasks are deferred.  Ratio: MPS / baseline, for the worst
block and for the number of warnings.

Run: ``.venv/bin/python -m bench.triggerer`` (``--triggers``; ``--tiny`` for a quick check).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import REPO_ROOT, base_parser, start_figures

sys.path.insert(0, str(REPO_ROOT))  # the tests' cluster harness and DAG file

#: Seconds the triggerer is watched after all tasks are deferred (the MPS triggers' first round
#: of describes takes N / 20 s).
OBSERVE_SECONDS = 70.0
BLOCKED = re.compile(r"Triggerer's async thread was blocked for ([0-9.]+) seconds")
DAG_IDS = {"airflow": "airflow_many_deferred", "mps": "mps_many_deferred"}


def run(kind: str, triggers: int, observe: float) -> list[float]:
    """Defer ``triggers`` tasks of ``kind`` in a fresh deployment; return the blocked seconds logged."""
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
    from airflow_provider_mps.hooks.mps import MpsHook
    from tests.integration.airflow_cluster import MPS_CONNECTION_ENV, AirflowCluster

    server = ThreadedEmulatorServer(port=0, rate_limit=20)
    server.start()
    try:
        handle = EmulatorHandle.from_server(server)
        handle.configure(wait_seconds=10_000_000, run_seconds=0)
        os.environ[MPS_CONNECTION_ENV] = handle.airflow_connection()
        env = {
            MPS_CONNECTION_ENV: handle.airflow_connection(),
            "MPS_LOAD_TASK_ID": MpsHook().create_aigc_image_task(prompt="One task, many waits"),
            "MPS_LOAD_END_TIME": str(time.time() + 3600),
            "MPS_LOAD_TRIGGERS": str(triggers),
            "AIRFLOW__TRIGGERER__CAPACITY": str(triggers + 10),
            "AIRFLOW__CORE__MAX_MAP_LENGTH": str(triggers + 10),
        }
        dags = REPO_ROOT / "tests" / "load" / "dags" / "mps_many_deferred.py"
        with (
            tempfile.TemporaryDirectory(prefix="mps-bench-triggerer-") as root,
            AirflowCluster(Path(root), dag_sources=[dags], extra_env=env) as cluster,
        ):
            return watch(cluster, DAG_IDS[kind], triggers, observe)
    finally:
        os.environ.pop(MPS_CONNECTION_ENV, None)
        server.stop()


def watch(cluster: Any, dag_id: str, triggers: int, observe: float) -> list[float]:
    """Run ``dag_id``; once its ``triggers`` tasks are deferred, watch ``observe`` s; return the blocks."""
    cluster.wait_for_dags([dag_id], timeout=180)
    log = cluster.log_dir / "triggerer.log"
    before = len(BLOCKED.findall(log.read_text(errors="replace")))
    cluster.unpause(dag_id)
    path = f"/dags/{dag_id}/dagRuns/{cluster.trigger(dag_id)}/taskInstances"

    def deferred() -> bool:
        return (
            int(cluster.api("GET", path, params={"state": "deferred", "limit": 1})["total_entries"])
            == triggers
        )

    cluster.wait_for(deferred, timeout=300, what=lambda: f"{triggers} deferred tasks")
    time.sleep(observe)
    return [float(seconds) for seconds in BLOCKED.findall(log.read_text(errors="replace"))[before:]]


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--triggers", type=int, default=1000, help="deferred tasks per run")
    args = parser.parse_args(argv)
    triggers, observe = (20, 5.0) if args.tiny else (args.triggers, OBSERVE_SECONDS)
    figures = start_figures("triggerer", triggers=triggers, observe_s=observe)
    blocked: dict[str, Any] = {}
    for kind in ("airflow", "mps"):
        blocked[kind] = run(kind, triggers, observe)
        figures.record(f"{kind}.blocked_warnings", len(blocked[kind]))
        figures.record(f"{kind}.worst_blocked_s", max(blocked[kind], default=0.0), "s")
        figures.record(f"{kind}.blocked_s", ", ".join(f"{seconds:.2f}" for seconds in blocked[kind]))
    worst = {kind: max(values, default=0.0) for kind, values in blocked.items()}
    against = f"{triggers} MPS triggers / {triggers} DateTimeTriggers"
    figures.ratio(
        "worst_blocked_mps_over_airflow",
        worst["mps"] / max(worst["airflow"], 0.2),
        1.0,
        what=f"worst blocked-loop warning, {against} (floor 0.2 s)",
    )
    figures.ratio(
        "warnings_mps_over_airflow",
        len(blocked["mps"]) / max(len(blocked["airflow"]), 1),
        1.0,
        what=f"blocked-loop warnings, {against} (floor 1)",
    )
    figures.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
