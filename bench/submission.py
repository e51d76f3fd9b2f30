"""
Submission throughput: N prompts through the batch operator, and through a mapped single operator.

Both run in one real Airflow deployment on this machine (``airflow api-server``, ``scheduler``
with the LocalExecutor, ``dag-processor`` and ``triggerer``, as separate processes; see
``tests/integration/airflow_cluster.py``), one after the other, against the MPS emulator in its
own process at the real quota of 20 ``CreateAigcImageTask`` per second:

1. ``batch``: one ``MpsCreateAigcImageBatchOperator`` task submits all N prompts.  Its wall time
   is measured inside the operator (``execute`` start to end) and divided by the quota bound
   N / 20 s; the DAG run's wall time (including Airflow starting the task) is shown beside it.
2. ``mapped``: ``MpsCreateAigcImageTaskOperator.partial(pool=...).expand(prompt=...)``, one task
   instance per prompt in a pool of 20 slots (the usual way to keep a mapped operator under a
   quota) with ``parallelism`` 32 so the pool is the limit.  Its DAG run's wall time and the span
   from its first create to its last are divided by the same bound.

Also counted: failed items / task instances, and ``RequestLimitExceeded`` answers at the
emulator (retried by the provider; none may surface as a failure).  The deployment's metadata
database is SQLite, in WAL mode with a long lock timeout so that 20 concurrent task instances do
not crash the scheduler (see :data:`SQLITE_SETTINGS`); a PostgreSQL deployment would only be
faster for the mapped run.

Run: ``.venv/bin/python -m bench.submission`` (``--tiny`` for a quick check).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._common import QUOTA, REPO_ROOT, EmulatorProcess, base_parser, start_figures

POOL = "mps_bench"
POOL_SLOTS = 20
PARALLELISM = 32

BATCH_DAG = '''
from __future__ import annotations

import time

import pendulum
from airflow.sdk import dag, task

from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator


class TimedBatch(MpsCreateAigcImageBatchOperator):
    """The batch operator, timing its own ``execute``."""

    def execute(self, context):
        started = time.perf_counter()
        result = super().execute(context)
        context["ti"].xcom_push(key="execute_seconds", value=time.perf_counter() - started)
        return result


@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), params={"n": 600})
def bench_mps_batch():
    @task
    def prompts(params=None) -> list[str]:
        return [f"Studio photo of catalogue item {n}" for n in range(int(params["n"]))]

    TimedBatch(
        task_id="submit", requests=prompts(), shared_fields={"model_name": "GEM"}, max_failed_items=None
    )


bench_mps_batch()
'''

MAPPED_DAG = f'''
from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    params={{"n": 600}},
    max_active_tasks={PARALLELISM},
)
def bench_mps_mapped():
    @task
    def prompts(params=None) -> list[str]:
        return [f"Studio photo of catalogue item {{n}}" for n in range(int(params["n"]))]

    MpsCreateAigcImageTaskOperator.partial(task_id="create", pool="{POOL}", model_name="GEM").expand(
        prompt=prompts()
    )


bench_mps_mapped()
'''


#: Imported by every Airflow process of the deployment (``sql_alchemy_connect_args``): SQLite in WAL
#: mode, waiting up to 120 s for a lock.  The rig's metadata database is SQLite; without this, 20
#: task instances writing at once make the scheduler die of "database is locked", which a
#: production database (PostgreSQL) would not.
SQLITE_SETTINGS = """
from sqlalchemy import event
from sqlalchemy.engine import Engine

CONNECT_ARGS = {"timeout": 120}


@event.listens_for(Engine, "connect")
def _wal(dbapi_connection, _record):
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
"""


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def task_instance_states(cluster: Any, dag_id: str, run_id: str) -> dict[str, int]:
    """How many task instances of the run are in each state (every map index counted)."""
    counts: dict[str, int] = {}
    offset = 0
    while True:
        page = cluster.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
            params={"limit": 100, "offset": offset},
        )["task_instances"]
        for ti in page:
            counts[str(ti["state"])] = counts.get(str(ti["state"]), 0) + 1
        if len(page) < 100:
            return counts
        offset += 100


def wait_for_run(cluster: Any, dag_id: str, run_id: str, *, timeout: float) -> dict[str, Any]:
    """
    Poll the run every 2 s until it finishes; return it.

    A loaded machine can make the API server miss a poll (it also serves every running task):
    such a poll is skipped, not fatal.
    """
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            run = cluster.dag_run(dag_id, run_id)
        except httpx.HTTPError:
            run = {"state": "unknown"}
        if run["state"] in ("success", "failed"):
            return run
        time.sleep(2)
    raise TimeoutError(
        f"Run {run_id} of {dag_id} did not finish within {timeout:.0f} s.\n{cluster.diagnostics()}"
    )


def run_and_measure(cluster: Any, handle: Any, dag_id: str, count: int) -> dict[str, Any]:
    """Trigger ``dag_id`` for ``count`` prompts, wait for it, and read what happened."""
    before = len(handle.requests())
    cluster.unpause(dag_id)
    run_id = cluster.trigger(dag_id, {"n": count})
    run = wait_for_run(cluster, dag_id, run_id, timeout=max(600.0, count * 6.0))
    cluster.pause(dag_id)
    creates = [call for call in handle.requests()[before:] if call["Action"] == "CreateAigcImageTask"]
    ok = sorted(call["Time"] for call in creates if call["ErrorCode"] is None)
    return {
        "run_id": run_id,
        "state": run["state"],
        "run_wall_s": _seconds(run["start_date"], run["end_date"]),
        "creates": len(creates),
        "tasks_created": len(ok),
        "request_limit_exceeded": sum(1 for call in creates if call["ErrorCode"] == "RequestLimitExceeded"),
        "other_errors": sum(1 for call in creates if call["ErrorCode"] not in (None, "RequestLimitExceeded")),
        "create_span_s": (ok[-1] - ok[0]) if len(ok) > 1 else 0.0,
        "ti_states": task_instance_states(cluster, dag_id, run_id),
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[1])
    parser.add_argument("--prompts", type=int, default=600, help="prompts submitted by each way")
    parser.add_argument("--mapped-prompts", type=int, default=None, help="prompts for the mapped run")
    args = parser.parse_args(argv)
    count = 6 if args.tiny else args.prompts
    mapped_count = 4 if args.tiny else (args.mapped_prompts or count)
    figures = start_figures(
        "submission",
        prompts_batch=count,
        prompts_mapped=mapped_count,
        quota_per_s=QUOTA,
        mapped_pool_slots=POOL_SLOTS,
        parallelism=PARALLELISM,
    )
    sys.path.insert(0, str(REPO_ROOT))
    from tests.integration.airflow_cluster import AirflowCluster

    with tempfile.TemporaryDirectory(prefix="mps-bench-submission-") as folder:
        root = Path(folder)
        dags = root / "bench-dags"
        dags.mkdir()
        (dags / "bench_mps_batch.py").write_text(BATCH_DAG)
        (dags / "bench_mps_mapped.py").write_text(MAPPED_DAG)
        pylib = root / "pylib"
        pylib.mkdir()
        (pylib / "mps_bench_db.py").write_text(SQLITE_SETTINGS)
        with EmulatorProcess(rate_limit=QUOTA, wait_seconds=1, run_seconds=2) as handle:
            env = {
                "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT": handle.airflow_connection(),
                "AIRFLOW__CORE__PARALLELISM": str(PARALLELISM),
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(PARALLELISM),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "mps_bench_db.CONNECT_ARGS",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(pylib), os.environ.get("PYTHONPATH")])),
            }
            started = time.perf_counter()
            with AirflowCluster(
                root / "cluster", dag_sources=sorted(dags.glob("*.py")), extra_env=env
            ) as cluster:
                figures.record("cluster_start_s", time.perf_counter() - started, "s")
                cluster.wait_for_dags(["bench_mps_batch", "bench_mps_mapped"], timeout=300)
                cluster.ensure_pool(POOL, POOL_SLOTS)
                batch = run_and_measure(cluster, handle, "bench_mps_batch", count)
                execute_s = cluster.xcom("bench_mps_batch", batch["run_id"], "submit", key="execute_seconds")
                failures = cluster.xcom("bench_mps_batch", batch["run_id"], "submit", key="failures")
                mapped = run_and_measure(cluster, handle, "bench_mps_mapped", mapped_count)

    bound, mapped_bound = count / QUOTA, mapped_count / QUOTA
    figures.record("batch.run_state", batch["state"])
    figures.record("batch.execute_s", execute_s, "s")
    figures.record("batch.run_wall_s", batch["run_wall_s"], "s")
    figures.record("batch.create_span_s", batch["create_span_s"], "s")
    figures.record("batch.tasks_created", batch["tasks_created"])
    figures.record("batch.failed_items", len(failures))
    figures.record("batch.request_limit_exceeded_at_emulator", batch["request_limit_exceeded"])
    figures.record("batch.other_create_errors", batch["other_errors"])
    figures.record("mapped.run_state", mapped["state"])
    figures.record("mapped.run_wall_s", mapped["run_wall_s"], "s")
    figures.record("mapped.create_span_s", mapped["create_span_s"], "s")
    figures.record("mapped.tasks_created", mapped["tasks_created"])
    figures.record("mapped.ti_states", mapped["ti_states"])
    figures.record("mapped.request_limit_exceeded_at_emulator", mapped["request_limit_exceeded"])
    figures.record("mapped.other_create_errors", mapped["other_errors"])
    figures.ratio(
        "batch_execute_over_quota_bound",
        execute_s / bound,
        1.05,
        what=f"batch operator wall time (execute) / ({count} / {QUOTA:g} s)",
    )
    figures.ratio(
        "batch_run_over_quota_bound",
        batch["run_wall_s"] / bound,
        what="batch DAG run wall time (Airflow starting both tasks included) / the same bound",
    )
    figures.ratio(
        "mapped_run_over_quota_bound",
        mapped["run_wall_s"] / mapped_bound,
        what=f"mapped single operator, DAG run wall time / ({mapped_count} / {QUOTA:g} s)",
    )
    figures.ratio(
        "mapped_create_span_over_quota_bound",
        mapped["create_span_s"] / mapped_bound,
        what="mapped single operator, first to last create / the same bound",
    )
    if mapped_count == count:
        figures.ratio(
            "mapped_run_over_batch_run",
            mapped["run_wall_s"] / batch["run_wall_s"],
            what="mapped DAG run wall time / batch DAG run wall time, same prompts",
        )
    ok = (
        batch["state"] == "success"
        and not failures
        and batch["tasks_created"] == count
        and batch["other_errors"] == 0
    )
    figures.write(args.json)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
