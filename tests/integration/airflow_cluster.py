"""
A real Airflow 3 deployment on loopback, run as subprocesses, for the integration tests.

:class:`AirflowCluster` migrates a fresh SQLite metadata database in a temporary
``AIRFLOW_HOME``, then starts ``airflow api-server`` (on a free port), ``airflow scheduler``
(LocalExecutor), ``airflow dag-processor`` and ``airflow triggerer``, each in its own process
group with its output in ``<root>/component-logs/<component>.log``.  Tests drive it the way a
user does, through the public REST API (``/api/v2``), and read the processes with psutil.

Nothing here imports Airflow: the cluster is configured only through the environment of its
subprocesses, so the pytest process's own (unit-test) Airflow configuration never leaks in.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

#: Each component's ``airflow`` command.  Logs are read from the shared log folder, so the log
#: servers (fixed ports on every interface) are not started: nothing listens beyond loopback and
#: two clusters on one machine do not collide.
COMMANDS: dict[str, tuple[str, ...]] = {
    "api-server": ("api-server",),
    "scheduler": ("scheduler", "--skip-serve-logs"),
    "dag-processor": ("dag-processor",),
    "triggerer": ("triggerer", "--skip-serve-logs"),
}
COMPONENTS: tuple[str, ...] = tuple(COMMANDS)

#: Task instance states after which Airflow will not run the task again in this DAG run.
FINISHED_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})
#: DAG run states that end a run.
FINISHED_RUN_STATES = frozenset({"success", "failed"})

#: Keys of a structured task log record that only say where and when it was logged.
_LOG_RECORD_CONTEXT_KEYS = frozenset(
    {"timestamp", "level", "event", "logger", "filename", "lineno", "category"}
    | {"task_id", "map_index", "run_id", "dag_id", "ti_id", "try_number"}
)

#: Seconds without a heartbeat after which a triggerer counts as dead and its triggers move on.
TRIGGERER_HEALTH_CHECK_THRESHOLD = 6


class ClusterError(AssertionError):
    """The cluster did not do what a test needed; the message carries the components' logs."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunWatch:
    """
    What :meth:`AirflowCluster.wait_for_run` saw while a DAG run was in flight.

    :param state: the run's final state.
    :param ti_states: per task id, the distinct successive states observed (polled, so very short
        states may be missed; the tests give the states they assert enough time).
    :param freed_while_deferred: per task id, ``True`` once the task was seen ``deferred`` with
        no process left running it (its worker slot was released).
    """

    state: str
    ti_states: dict[str, list[str]] = field(default_factory=dict)
    freed_while_deferred: dict[str, bool] = field(default_factory=dict)


class AirflowCluster:
    """
    A scheduler, triggerer, DAG processor and API server sharing one SQLite database.

    :param root: an empty directory owned by the caller; everything the cluster writes goes here.
    :param dag_sources: copied into the cluster's DAGs folder before it starts: a file as is, a
        directory's contents (with its data files) merged into the folder.
    :param extra_env: more environment for every component (connections, variables, ...).
    """

    def __init__(
        self, root: Path, *, dag_sources: Iterable[Path], extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.root = root
        self.home = root / "airflow-home"
        self.dags_folder = root / "dags"
        self.log_dir = root / "component-logs"
        self.dag_sources = list(dag_sources)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = self._environment(extra_env or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._client: httpx.Client | None = None

    # ------------------------------------------------------------------ lifecycle

    def _environment(self, extra_env: Mapping[str, str]) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "4",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(TRIGGERER_HEALTH_CHECK_THRESHOLD),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # Installed with the openlineage extra; these tests assert nothing on its events.
                "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            }
        )
        env.update(extra_env)
        return env

    def start(self, *, timeout: float = 180.0) -> None:
        """
        Migrate the database, start every component and wait until all report healthy.

        :param timeout: seconds allowed for the components to become healthy after migration.
        """
        self.prepare()
        for component in COMPONENTS:
            self.start_component(component)
        self.wait_until_healthy(timeout=timeout)

    def prepare(self, *, migrate_timeout: float = 300.0) -> None:
        """Create the folders, copy the DAG files in and migrate the metadata database."""
        for directory in (self.home, self.dags_folder, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for source in self.dag_sources:
            if source.is_dir():
                shutil.copytree(
                    source,
                    self.dags_folder,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"),
                )
            else:
                shutil.copy2(source, self.dags_folder / source.name)
        migrate = subprocess.run(
            ["airflow", "db", "migrate"],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=migrate_timeout,
            check=False,
        )
        if migrate.returncode != 0:
            raise ClusterError(f"airflow db migrate failed ({migrate.returncode}):\n{migrate.stderr[-4000:]}")

    #: The ``airflow`` command of each component (a subclass runs other components).
    commands: dict[str, tuple[str, ...]] = COMMANDS

    def start_component(self, component: str) -> None:
        """Start ``component`` (a key of :attr:`commands`) in its own process group."""
        log_path = self.log_dir / f"{component}.log"
        with log_path.open("ab") as log_file:
            log_file.write(f"\n===== starting {component} at {time.time():.3f} =====\n".encode())
            log_file.flush()
            self._procs[component] = subprocess.Popen(
                ["airflow", *self.commands[component]],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill_component(self, component: str) -> None:
        """SIGKILL ``component`` and every process it started, as a machine crash would."""
        proc = self._procs.pop(component)
        _kill_tree(proc, signal.SIGKILL, grace=0)

    def process(self, component: str) -> psutil.Process:
        """The psutil view of a running component's main process."""
        return psutil.Process(self._procs[component].pid)

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and any process still using this home."""
        if self._client is not None:
            self._client.close()
            self._client = None
        while self._procs:
            _component, proc = self._procs.popitem()
            _kill_tree(proc, signal.SIGTERM, grace=10)
        for straggler in self._processes_using_home():
            with contextlib.suppress(psutil.Error):
                straggler.kill()

    def _processes_using_home(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if proc.pid != os.getpid() and proc.environ().get("AIRFLOW_HOME") == str(self.home):
                    found.append(proc)
        return found

    def __enter__(self) -> AirflowCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ readiness

    def health(self) -> dict[str, Any]:
        """The API server's ``/api/v2/monitor/health`` answer."""
        response = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        response.raise_for_status()
        return response.json()

    def wait_until_healthy(self, *, timeout: float) -> dict[str, Any]:
        """
        Wait until the metadatabase, scheduler, triggerer and DAG processor all report healthy.

        :param timeout: seconds to wait before failing with the components' logs.
        """
        last: dict[str, Any] = {}
        last_error: Exception | None = None

        def healthy() -> bool:
            nonlocal last, last_error
            self._check_alive()
            try:
                last = self.health()
            except httpx.HTTPError as err:
                last_error = err
                return False
            return all(
                (last.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
            )

        self.wait_for(
            healthy,
            timeout=timeout,
            what=lambda: f"the cluster to be healthy (last answer: {last}, last error: {last_error})",
        )
        return last

    def wait_for_dags(self, dag_ids: Iterable[str], *, timeout: float = 120.0) -> None:
        """
        Wait until the DAG processor has serialized every DAG in ``dag_ids``.

        Fails at once, with the errors, if a DAG is still missing while DAG files failed to import.

        :param dag_ids: the DAG ids the tests need.
        :param timeout: seconds to wait.
        """
        wanted = set(dag_ids)
        missing: set[str] = set(wanted)

        def parsed() -> bool:
            nonlocal missing
            self._check_alive()
            known = {dag["dag_id"] for dag in self.api("GET", "/dags", params={"limit": 1000})["dags"]}
            missing = wanted - known
            errors = self.api("GET", "/importErrors")["import_errors"]
            if missing and errors:
                raise ClusterError(
                    f"DAGs {sorted(missing)} are missing and DAG files failed to import:\n"
                    + "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                )
            return not missing

        self.wait_for(parsed, timeout=timeout, what=lambda: f"DAGs {sorted(missing)} to be parsed")

    def wait_for(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float,
        what: Callable[[], str],
        interval: float = 0.5,
    ) -> None:
        """Poll ``condition`` until it holds; on timeout raise :class:`ClusterError` with the logs."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"Timed out after {timeout:.0f} s waiting for {what()}.\n{self.diagnostics()}"
                )
            time.sleep(interval)

    def _check_alive(self) -> None:
        for component, proc in self._procs.items():
            if proc.poll() is not None:
                raise ClusterError(
                    f"Airflow {component} exited with code {proc.returncode}.\n{self.diagnostics()}"
                )

    def diagnostics(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every component's log (without HTTP access lines), for messages."""
        parts = []
        for component in COMPONENTS:
            log_path = self.log_dir / f"{component}.log"
            text = log_path.read_text(errors="replace") if log_path.exists() else "(no log)"
            kept = [line for line in text.splitlines() if "[http.access]" not in line]
            tail = "\n".join(kept[-lines:])
            parts.append(f"----- {component} (last {lines} lines of {log_path}) -----\n{tail}")
        return "\n".join(parts)

    # ------------------------------------------------------------------ REST API

    @property
    def client(self) -> httpx.Client:
        """An httpx client for the API server, authenticated as admin."""
        if self._client is None:
            token = httpx.get(f"{self.base_url}/auth/token", timeout=10).json()["access_token"]
            self._client = httpx.Client(
                base_url=f"{self.base_url}/api/v2",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        return self._client

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """
        Call ``/api/v2{path}`` and return the decoded JSON answer.

        :raises ClusterError: when the API answers with an error status.
        """
        response = self.client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ClusterError(f"{method} /api/v2{path} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def unpause(self, dag_id: str) -> None:
        """Unpause ``dag_id`` so the scheduler runs it."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a manual run of ``dag_id`` with ``conf`` (as the UI form does); return its run id."""
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf or {})}
        )
        return run["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id``."""
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """One DAG run."""
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances, by task id."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return {ti["task_id"]: ti for ti in answer["task_instances"]}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """The try history of one task instance (one entry per try), oldest first."""
        answer = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")
        return sorted(answer["task_instances"], key=lambda ti: ti["try_number"])

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", *, map_index: int = -1
    ) -> Any:
        """The value of one XCom, decoded."""
        entry = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index},
        )
        return entry["value"]

    def extra_links(self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1) -> dict[str, Any]:
        """The operator extra links the UI shows on one task instance, by name."""
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links",
            params={"map_index": map_index},
        )
        return answer["extra_links"]

    def ensure_pool(self, name: str, slots: int) -> None:
        """Create pool ``name`` with ``slots`` slots, or resize it if it exists."""
        response = self.client.post("/pools", json={"name": name, "slots": slots})
        if response.status_code == 409:
            self.api("PATCH", f"/pools/{name}", json={"name": name, "slots": slots})
        elif response.status_code >= 400:
            raise ClusterError(f"POST /api/v2/pools answered {response.status_code}: {response.text}")

    def fail_unfinished_runs(self) -> list[str]:
        """
        Mark every queued or running DAG run failed (Airflow then stops its tasks); return their ids.

        Used after each test so a run a failed test left behind cannot act during the next one.
        """
        answer = self.api("GET", "/dags/~/dagRuns", params={"state": ["queued", "running"], "limit": 100})
        stopped = []
        for run in answer["dag_runs"]:
            self.api("PATCH", f"/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}", json={"state": "failed"})
            stopped.append(f"{run['dag_id']}/{run['dag_run_id']}")
        return stopped

    def pause(self, dag_id: str) -> None:
        """Pause ``dag_id``: the scheduler creates no more runs of it."""
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": True})

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """
        One try's task log as text: a line ``[level] event key=value ...`` per structured record.

        The record's context (timestamp, logger, source line, task identity) is left out.
        """
        answer = self.api(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
            headers={"Accept": "application/json"},
        )
        lines = []
        for record in answer["content"]:
            if not isinstance(record, dict):
                lines.append(str(record))
                continue
            extras = "".join(
                f" {key}={value}" for key, value in record.items() if key not in _LOG_RECORD_CONTEXT_KEYS
            )
            lines.append(f"[{record.get('level', '')}] {record.get('event', '')}{extras}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ observing runs

    def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float = 120.0,
        on_poll: Callable[[dict[str, dict[str, Any]]], None] | None = None,
    ) -> RunWatch:
        """
        Poll a DAG run until it finishes, recording the task states seen on the way.

        :param dag_id: the DAG.
        :param run_id: the run.
        :param timeout: seconds to wait before failing with the components' logs.
        :param on_poll: called with the task instances (by task id) on every poll.
        :return: the final state and what was observed.
        """
        watch = RunWatch(state="")

        def finished() -> bool:
            self._check_alive()
            tis = self.task_instances(dag_id, run_id)
            for task_id, ti in tis.items():
                seen = watch.ti_states.setdefault(task_id, [])
                state = ti["state"] or "none"
                if not seen or seen[-1] != state:
                    seen.append(state)
                if state == "deferred" and not self.task_processes(ti["id"]):
                    watch.freed_while_deferred[task_id] = True
            if on_poll is not None:
                on_poll(tis)
            watch.state = self.dag_run(dag_id, run_id)["state"]
            return watch.state in FINISHED_RUN_STATES

        self.wait_for(
            finished,
            timeout=timeout,
            interval=0.2,
            what=lambda: f"run {run_id} of {dag_id} to finish (task states seen: {watch.ti_states})",
        )
        return watch

    def task_processes(self, ti_id: str) -> list[psutil.Process]:
        """
        The processes running task instance ``ti_id`` right now.

        The Task SDK names the process that runs a task's code ``airflow worker -- <ti id>``; the
        LocalExecutor worker supervising it is its parent.
        """
        marker = f"airflow worker -- {ti_id}"
        found = []
        for proc in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if marker in " ".join(proc.cmdline()):
                    found.append(proc)
        return found

    def explain(self, dag_id: str, run_id: str) -> str:
        """Task states, tries and task logs of a run plus component logs, for assertion messages."""
        parts = [f"===== {dag_id} / {run_id} ====="]
        try:
            for task_id, ti in self.task_instances(dag_id, run_id).items():
                parts.append(f"--- task {task_id}: state={ti['state']} try={ti['try_number']}")
                for attempt in range(1, (ti["try_number"] or 0) + 1):
                    with contextlib.suppress(ClusterError):
                        log = self.task_log(dag_id, run_id, task_id, attempt)
                        parts.append(f"- log of try {attempt}:\n" + "\n".join(log.splitlines()[-40:]))
        except (ClusterError, httpx.HTTPError) as err:
            parts.append(f"(could not read the run: {err})")
        parts.append(self.diagnostics())
        return "\n".join(parts)


REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO_ROOT / "dags_examples"
INTEGRATION_DAGS = Path(__file__).resolve().parent / "dags"
MPS_CONNECTION_ENV = "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT"


def provider_cluster(
    root: Path,
    *,
    mps_connection: str,
    image_base: str,
    extra_env: Mapping[str, str] | None = None,
    extra_dags: Iterable[Path] = (),
) -> AirflowCluster:
    """
    The cluster the integration suite runs (not started yet): build another one like it.

    Its DAGs folder holds ``dags_examples/`` (with its data files), ``tests/integration/dags/``
    and ``extra_dags``; ``tencentcloud_mps_default`` is ``mps_connection`` and the examples'
    ``mps_image_base`` Variable is ``image_base``.

    :param root: an empty directory for the cluster's files.
    :param mps_connection: the default MPS connection as JSON (``EmulatorHandle.airflow_connection()``).
    :param image_base: where the examples save images, an ``ObjectStoragePath`` URL.
    :param extra_env: more environment, e.g. ``{"AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG"}``.
    :param extra_dags: more DAG files or folders.
    """
    env = {MPS_CONNECTION_ENV: mps_connection, "AIRFLOW_VAR_MPS_IMAGE_BASE": image_base}
    env.update(extra_env or {})
    sources = [EXAMPLE_DAGS, *sorted(INTEGRATION_DAGS.glob("*.py")), *extra_dags]
    return AirflowCluster(root, dag_sources=sources, extra_env=env)


def _kill_tree(proc: subprocess.Popen[bytes], sig: signal.Signals, *, grace: float) -> None:
    """Send ``sig`` to ``proc``'s process group and descendants; SIGKILL what outlives ``grace``."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
    for member in family:
        with contextlib.suppress(psutil.Error):
            member.send_signal(sig)
    _gone, alive = psutil.wait_procs(family, timeout=grace) if grace else ([], family)
    for member in alive:
        with contextlib.suppress(psutil.Error):
            member.kill()
    psutil.wait_procs(alive, timeout=5)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
