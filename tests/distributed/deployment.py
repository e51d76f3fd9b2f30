"""
A distributed Airflow on loopback: PostgreSQL, Redis, CeleryExecutor, 2 workers and 2 triggerers.

:class:`Deployment` starts, in order: a throwaway PostgreSQL (Debian's, run as the unprivileged
``postgres`` user when the tests run as root, in a new data directory, on a free port), a
``redis-server`` on a free port (Celery's broker on database 0, the provider's shared quota on
database 1), then Airflow: ``db migrate``, the API server, scheduler and DAG processor, two Celery
workers (``worker-1`` and ``worker-2``, each serving the ``default`` queue and a queue named after
itself) and two triggerers.  Everything binds to 127.0.0.1 and is torn down by :meth:`stop`, which
the context manager, the fixtures and an ``atexit`` hook all call, so a failing or interrupted
test leaves no process behind.

Nothing here imports Airflow: the components are configured through their environment only
(:class:`~tests.integration.airflow_cluster.AirflowCluster` does the same for one machine).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from tests.integration.airflow_cluster import (
    MPS_CONNECTION_ENV,
    AirflowCluster,
    ClusterError,
    _kill_tree,
    free_port,
)
from tests.utils.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Every component's ``airflow`` command, in start order.
COMMANDS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    **{
        f"worker-{n}": (
            "celery",
            "worker",
            "--celery-hostname",
            f"worker-{n}@%h",
            "--queues",
            f"default,worker-{n}",
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        )
        for n in (1, 2)
    },
    "triggerer-1": ("triggerer", "--skip-serve-logs"),
    "triggerer-2": ("triggerer", "--skip-serve-logs"),
}
WORKERS = ("worker-1", "worker-2")
TRIGGERERS = ("triggerer-1", "triggerer-2")
#: Seconds a task instance may go without a heartbeat before the scheduler fails its try.
TASK_HEARTBEAT_TIMEOUT = 20

DISTRIBUTED_DAGS = Path(__file__).resolve().parent / "dags"


def _pg_bin() -> Path:
    """Debian's PostgreSQL server binaries (``/usr/lib/postgresql/<major>/bin``), newest major."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise ClusterError("PostgreSQL is not installed: run scripts/setup-distributed.sh")
    return found[-1].parent


class PostgresServer:
    """
    A throwaway PostgreSQL cluster: ``initdb`` in a new directory, ``pg_ctl`` on a free loopback port.

    As root it runs as the ``postgres`` system user (PostgreSQL refuses to run as root).
    """

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="mps-distributed-pg-"))
        self.data = self.root / "data"
        self.started = False
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def sqlalchemy_url(self) -> str:
        """Airflow's ``sql_alchemy_conn`` for its ``airflow`` database."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    def _run(self, *args: str | Path, timeout: float = 120) -> None:
        result = subprocess.run(
            [str(a) for a in args],
            user=self.user,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            command = " ".join(map(str, args))
            raise ClusterError(f"{command} failed ({result.returncode}):\n{result.stderr[-3000:]}")

    def start(self) -> None:
        """Create the cluster and its ``airflow`` database, and start the server."""
        self._run(self.bin / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self.started = True
        self._run(
            self.bin / "pg_ctl",
            "-D",
            self.data,
            "-l",
            self.root / "postgres.log",
            "-o",
            options,
            "-w",
            "start",
        )
        self._run(self.bin / "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow")

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        if self.started:
            self.started = False
            with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", timeout=60)
            pid_file = self.data / "postmaster.pid"
            if pid_file.exists():  # pg_ctl failed: end the postmaster and its children ourselves
                with contextlib.suppress(ValueError, OSError, psutil.Error):
                    parent = psutil.Process(int(pid_file.read_text().split()[0]))
                    for proc in [*parent.children(recursive=True), parent]:
                        proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)


class DistributedCluster(AirflowCluster):
    """
    :class:`AirflowCluster` with the CeleryExecutor on PostgreSQL and Redis, 2 workers and 2 triggerers.

    :param root: an empty directory for Airflow's files.
    :param database_url: Airflow's ``sql_alchemy_conn``.
    :param broker_url: Celery's broker (a Redis URI).
    :param env: more environment for every component (connection, quota mode, ...).
    :param worker_concurrency: task slots of each worker.
    :param triggerer_capacity: the most triggers one triggerer runs (below the total, both get some).
    """

    commands = COMMANDS

    def __init__(
        self,
        root: Path,
        *,
        database_url: str,
        broker_url: str,
        env: Mapping[str, str],
        worker_concurrency: int,
        triggerer_capacity: int,
    ) -> None:
        distributed_env = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "64",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_POOL_SIZE": "3",
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "64",
            "AIRFLOW__TRIGGERER__CAPACITY": str(triggerer_capacity),
        }
        super().__init__(root, dag_sources=[DISTRIBUTED_DAGS], extra_env={**distributed_env, **env})
        #: Each running triggerer's job id, by component.
        self.triggerer_jobs: dict[str, int] = {}

    def start(self, *, timeout: float = 240.0) -> None:
        """Migrate PostgreSQL, start every component of :data:`COMMANDS`, wait until healthy."""
        self.prepare(migrate_timeout=400)
        # The triggerers start one after the other, so each one's job id is known (the API names the
        # triggerer of a deferred task by its job id only).
        for component in COMMANDS:
            if component != "triggerer-2":
                self.start_component(component)
        self.wait_until_healthy(timeout=timeout)
        self.triggerer_jobs["triggerer-1"] = self._new_triggerer_job(timeout=timeout)
        self.start_component("triggerer-2")
        self.triggerer_jobs["triggerer-2"] = self._new_triggerer_job(timeout=timeout)
        self.wait_for(self.workers_ready, timeout=timeout, what=lambda: "both Celery workers to be ready")

    def alive_triggerer_jobs(self) -> set[int]:
        """The job ids of the triggerers heartbeating now."""
        answer = self.api("GET", "/jobs", params={"job_type": "TriggererJob", "is_alive": True, "limit": 100})
        return {job["id"] for job in answer["jobs"]}

    def _new_triggerer_job(self, *, timeout: float) -> int:
        known = set(self.triggerer_jobs.values())
        new: set[int] = set()

        def appeared() -> bool:
            nonlocal new
            self._check_alive()
            new = self.alive_triggerer_jobs() - known
            return len(new) == 1

        self.wait_for(appeared, timeout=timeout, what=lambda: f"one new triggerer job (new: {new})")
        return new.pop()

    def restart_component(self, component: str) -> None:
        """Start a killed ``component`` again (a triggerer gets a new job id)."""
        if component in TRIGGERERS:
            self.triggerer_jobs.pop(component, None)
            self.start_component(component)
            self.triggerer_jobs[component] = self._new_triggerer_job(timeout=120)
        else:
            self.start_component(component)

    def running(self) -> list[str]:
        """The components running now."""
        return [name for name, proc in self._procs.items() if proc.poll() is None]

    def workers_ready(self) -> bool:
        """Whether every running worker logged Celery's ``ready.``."""
        self._check_alive()
        return all(" ready." in self._log_since_start(name) for name in self.running() if name in WORKERS)

    def _log_since_start(self, component: str) -> str:
        """What ``component`` logged since it was last started."""
        text = (self.log_dir / f"{component}.log").read_text(errors="replace")
        return text.rsplit("===== starting", 1)[-1]

    def component_of(self, pid: int) -> str | None:
        """The component whose process tree holds process ``pid``, if any."""
        for name, proc in self._procs.items():
            with contextlib.suppress(psutil.Error):
                family = [
                    proc.pid,
                    *(child.pid for child in psutil.Process(proc.pid).children(recursive=True)),
                ]
                if pid in family:
                    return name
        return None

    def diagnostics(self, lines: int = 30) -> str:
        """The last ``lines`` lines of every component's log, for assertion messages."""
        parts = []
        for component in COMMANDS:
            log_path = self.log_dir / f"{component}.log"
            text = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
            kept = [line for line in text.splitlines() if "[http.access]" not in line]
            parts.append(f"----- {component} -----\n" + "\n".join(kept[-lines:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every component, SIGKILL first for speed (nothing here needs a clean shutdown)."""
        while self._procs:
            _component, proc = self._procs.popitem()
            _kill_tree(proc, signal.SIGTERM, grace=5)
        super().stop()

    # ------------------------------------------------------------------ REST API, mapped tasks

    def all_task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, mapped ones included (one entry per map index)."""
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000})[
            "task_instances"
        ]


class Deployment:
    """
    PostgreSQL, Redis and a :class:`DistributedCluster`, started together and stopped together.

    :param root: an empty directory for the deployment's files.
    :param mps_connection: the default MPS connection as JSON (the emulator's).
    :param shared_quota: draw every process's requests from Redis (``quota_storage_uri``); else
        each process keeps its own share.
    :param quota_share: ``[tencentcloud_mps] quota_share`` of every process, or ``None`` for the default.
    :param worker_concurrency: task slots of each Celery worker.
    :param triggerer_capacity: the most triggers each triggerer runs.
    :param env: more environment for every component.
    """

    def __init__(
        self,
        root: Path,
        *,
        mps_connection: str,
        shared_quota: bool = True,
        quota_share: float | None = None,
        worker_concurrency: int = 4,
        triggerer_capacity: int = 1000,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.root = root
        self.postgres = PostgresServer()
        (root / "redis").mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(workdir=root / "redis", password="distributed-redis-pass")
        extra = {MPS_CONNECTION_ENV: mps_connection, **(env or {})}
        if shared_quota:
            extra["AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI"] = self.redis.uri.replace("/0", "/1")
        if quota_share is not None:
            extra["AIRFLOW__TENCENTCLOUD_MPS__QUOTA_SHARE"] = f"{quota_share:g}"
        self.cluster = DistributedCluster(
            root / "airflow",
            database_url=self.postgres.sqlalchemy_url,
            broker_url=self.redis.uri,
            env=extra,
            worker_concurrency=worker_concurrency,
            triggerer_capacity=triggerer_capacity,
        )
        self._stopped = False

    def start(self) -> None:
        """Start everything; on any failure stop what was started and re-raise."""
        atexit.register(self.stop)
        try:
            self.postgres.start()
            self.redis.start()
            self.cluster.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Airflow, then Redis and PostgreSQL; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.cluster.stop()
        finally:
            try:
                self.redis.stop()
            finally:
                self.postgres.stop()
                atexit.unregister(self.stop)

    def __enter__(self) -> Deployment:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
