"""
``make ui``: the Airflow UI with every example DAG, on the local MPS emulator, until Ctrl-C.

Starts ``mps-emulator`` and a real Airflow (API server with the UI, scheduler, DAG processor,
triggerer; LocalExecutor on an embedded SQLite database) on loopback, with the
``tencentcloud_mps_default`` connection pointing at the emulator and ``dags_examples/`` as the DAGs
folder, then prints the URL and the login.  Everything stays under ``.ui/`` in the project: the
Airflow home, the emulator's tasks (kept across restarts), the saved images and every log.  Ctrl-C
(or SIGTERM) stops every process it started, and it exits 0.

Settings (environment): ``MPS_UI_PORT`` (Airflow, default 8080), ``MPS_UI_EMULATOR_PORT`` (default
9100; ``0`` picks free ports for either), ``MPS_UI_DIR`` (default ``.ui``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
USER = "admin"
SECRET_ID = "AKIDMPSEMULATOR0000000000000000000000"
SECRET_KEY = "mps-emulator-secret-key-00000000"
COMPONENTS = {
    "api-server": ["api-server"],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
#: Seconds Airflow may take to report every component healthy (first start: migration excluded).
START_TIMEOUT = 300
#: Seconds each process gets to stop after SIGTERM before it is killed.
STOP_GRACE = 20


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop everything."""


def _port(variable: str, default: int) -> int:
    value = int(os.environ.get(variable) or default)
    if value:
        return value
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _password(home: Path) -> str:
    """The admin's password, generated once and kept in the simple auth manager's passwords file."""
    path = home / "simple_auth_manager_passwords.json"
    if path.exists():
        return json.loads(path.read_text())[USER]
    password = secrets.token_urlsafe(12)
    path.write_text(json.dumps({USER: password}))
    path.chmod(0o600)
    return password


def _environment(home: Path, ui_dir: Path, port: int, endpoint: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    secrets_file = home / "ui-secrets.json"
    if not secrets_file.exists():
        secrets_file.write_text(json.dumps({"api": secrets.token_hex(16), "jwt": secrets.token_hex(32)}))
    keys = json.loads(secrets_file.read_text())
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(
                home / "simple_auth_manager_passwords.json"
            ),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": keys["api"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt"],
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__OPENLINEAGE__DISABLED": "True",
            "AIRFLOW_VAR_MPS_IMAGE_BASE": (ui_dir / "images").as_uri(),
            "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT": json.dumps(
                {
                    "conn_type": "tencentcloud_mps",
                    "login": SECRET_ID,
                    "password": SECRET_KEY,
                    "extra": {"endpoint": endpoint, "region": "ap-guangzhou"},
                }
            ),
        }
    )
    return env


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            env=env,
            cwd=log.parent,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this script only; it stops the rest in order
        )


def _wait(condition, what: str, timeout: float, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5) as response:
            health = json.load(response)
    except (OSError, ValueError):
        return False
    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
    return all((health.get(part) or {}).get("status") == "healthy" for part in parts)


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM every process group, newest first; SIGKILL what outlives :data:`STOP_GRACE`."""
    for process in reversed(list(processes.values())):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for name, process in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop within {STOP_GRACE} s; killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _raise_stop(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def main() -> int:
    """Start everything, print where it is, serve until Ctrl-C; return the exit status."""
    ui_dir = Path(os.environ.get("MPS_UI_DIR") or ROOT / ".ui").resolve()
    home = ui_dir / "airflow"
    logs = ui_dir / "logs"
    for folder in (home, logs, ui_dir / "images"):
        folder.mkdir(parents=True, exist_ok=True)
    port = _port("MPS_UI_PORT", 8080)
    emulator_port = _port("MPS_UI_EMULATOR_PORT", 9100)
    url = f"http://127.0.0.1:{port}"
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        emulator_log = logs / "emulator.log"
        emulator_log.write_text("")
        print(f"Starting the MPS emulator (log: {emulator_log})", flush=True)
        processes["emulator"] = _start(
            [str(BIN / "mps-emulator"), "--host", "127.0.0.1", "--port", str(emulator_port)]
            + [
                "--secret-id",
                SECRET_ID,
                "--secret-key",
                SECRET_KEY,
                "--wait-seconds",
                "1",
                "--run-seconds",
                "3",
            ]
            + ["--state-file", str(ui_dir / "emulator-state.json")],
            emulator_log,
        )
        banner = re.compile(r"listening on (http://\S+)")
        _wait(lambda: banner.search(emulator_log.read_text()) is not None, "the emulator", 30, processes)
        endpoint = banner.search(emulator_log.read_text()).group(1)  # type: ignore[union-attr]
        env = _environment(home, ui_dir, port, endpoint)
        password = _password(home)
        print(f"Migrating the Airflow database in {home}", flush=True)
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, check=False
        )
        if migrate.returncode != 0:
            print(migrate.stdout[-3000:] + migrate.stderr[-3000:], file=sys.stderr)
            raise RuntimeError("airflow db migrate failed")
        print(f"Starting Airflow: {', '.join(COMPONENTS)} (logs: {logs})", flush=True)
        for name, args in COMPONENTS.items():
            processes[name] = _start([str(BIN / "airflow"), *args], logs / f"{name}.log", env)
        _wait(lambda: _healthy(url), "Airflow to be healthy", START_TIMEOUT, processes)
        print(
            f"\nAirflow UI:    {url}\nLogin:         {USER} / {password}\n"
            f"MPS emulator:  {endpoint}\nSaved images:  {ui_dir / 'images'}\n"
            "Every example DAG is loaded; example_mps_human_review asks for a review under "
            "Browse > Required Actions.\nPress Ctrl-C to stop.",
            flush=True,
        )
        while True:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {logs}")
            time.sleep(1)
    except Stop as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(f"\n{stop}: stopping Airflow and the emulator", flush=True)
        _stop(processes)
        print("Stopped.", flush=True)
        return 0
    except RuntimeError as error:
        print(f"make ui: {error}; stopping", file=sys.stderr, flush=True)
        _stop(processes)
        return 1


if __name__ == "__main__":
    sys.exit(main())
