"""
``make demo``: run the scheduled example DAG end to end on the local MPS emulator.

Everything stays under ``.demo/`` in the project: an embedded SQLite Airflow home, the
emulator's log, and the saved images.  Nothing leaves the machine.

Steps: start ``mps-emulator`` on a free loopback port, point the ``tencentcloud_mps_default``
connection at it (an ``AIRFLOW_CONN_...`` environment variable, exactly as a deployment would
point it at Tencent Cloud), migrate the metadata database, run ``airflow dags test
example_mps_scheduled``, then print the MPS TaskId, the image URLs and where the images were
saved.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
HOME = DEMO / "airflow"
IMAGES = DEMO / "images"
BIN = Path(sys.executable).parent
DAG_ID = "example_mps_scheduled"
SECRET_ID = "AKIDDEMO00000000000000000000000000000"
SECRET_KEY = "demo-secret-key-never-printed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_ready(url: str, emulator: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if emulator.poll() is not None:
            sys.exit(f"The emulator exited with {emulator.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url + "/_emulator/tasks", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"The emulator did not answer at {url} within 30 s; see {log}")


def _airflow_env(endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
            "AIRFLOW_VAR_MPS_IMAGE_BASE": IMAGES.as_uri(),
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


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        result = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        sys.exit(f"{' '.join(cmd[1:])} failed with {result.returncode}; last lines of {log}:\n{tail}")


def _saved_images() -> list[dict]:
    with sqlite3.connect(HOME / "airflow.db") as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = 'save_images' AND key = 'return_value'"
            " ORDER BY timestamp DESC LIMIT 1",
            (DAG_ID,),
        ).fetchone()
    if row is None:
        return []
    value = row[0]
    return json.loads(value if isinstance(value, str) else value.decode())


def main() -> None:
    """Run the demo; exit non-zero with the reason if any step fails."""
    shutil.rmtree(IMAGES, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    emulator_log = DEMO / "emulator.log"
    print(f"Starting the MPS emulator on {endpoint} (log: {emulator_log})")
    with emulator_log.open("w") as log:
        emulator = subprocess.Popen(
            [
                str(BIN / "mps-emulator"),
                "--port",
                str(port),
                "--secret-id",
                SECRET_ID,
                "--secret-key",
                SECRET_KEY,
                "--wait-seconds",
                "1",
                "--run-seconds",
                "2",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(endpoint, emulator, emulator_log)
        env = _airflow_env(endpoint)
        print(f"Migrating the embedded SQLite Airflow home {HOME}")
        _run([str(BIN / "airflow"), "db", "migrate"], env, DEMO / "db-migrate.log")
        run_log = DEMO / "dags-test.log"
        print(f"Running `airflow dags test {DAG_ID}` (log: {run_log})")
        _run([str(BIN / "airflow"), "dags", "test", DAG_ID], env, run_log)
        with urllib.request.urlopen(endpoint + "/_emulator/tasks", timeout=5) as resp:
            tasks = json.load(resp)
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

    if not tasks:
        sys.exit("The DAG run succeeded but the emulator recorded no MPS task.")
    print("\nMPS tasks created by the run:")
    for task in tasks:
        print(f"  TaskId {task['TaskId']}  status {task['Status']}")
        print(f"    prompt: {task['Request'].get('Prompt')}")
        for url in task.get("ImageUrls") or []:
            print(f"    image URL (expires with the emulator): {url}")
    saved = _saved_images()
    if not saved:
        sys.exit("No saved images were recorded by save_images.")
    print("\nImages saved before the service deletes them:")
    for item in saved:
        print(f"  {item['path']}  ({item['size']} bytes, sha256 {item['sha256'][:16]}...)")
    print(f"\nOpen the folder: {IMAGES}")


if __name__ == "__main__":
    main()
