"""
The user's DAG of issue 10, run with ``airflow dags test`` against the ``mps-emulator`` console script.

Run on every Airflow line by ``make test-matrix`` (and on the newest by ``make test``).  Everything
is done as a user does it: the emulator is the installed console script in its own process, the
connection is ``AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT``, the image folder the ``mps_image_base``
Variable (``AIRFLOW_VAR_MPS_IMAGE_BASE``), the metadata database a fresh SQLite file migrated by
``airflow db migrate``, and the DAG runs with ``airflow dags test`` (which on 2.11 and 3.x alike
runs the deferred task's trigger in the same process).  No Airflow is imported here: the test
reads the results from the emulator's introspection endpoints, the files and the SQLite database.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

DAGS_FOLDER = Path(__file__).resolve().parent / "dags"
DAG_ID = "matrix_mps_user_dag"
BIN = Path(sys.executable).parent
SECRET_ID = "AKIDMPSEMULATOR0000000000000000000000"
SECRET_KEY = "matrix-emulator-secret-key-000000"
EXPECTED_PROMPT = "A watercolor of a ceramic teapot, studio lighting"


class Emulator:
    """The ``mps-emulator`` console script, running in its own process on a free port."""

    def __init__(self, process: subprocess.Popen[str], endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.endpoint + path, timeout=10) as response:
            body = response.read()
        return json.loads(body) if path.startswith("/_emulator/") else body

    def connection(self) -> str:
        return json.dumps(
            {
                "conn_type": "tencentcloud_mps",
                "login": SECRET_ID,
                "password": SECRET_KEY,
                "extra": {"endpoint": self.endpoint, "region": "ap-guangzhou"},
            }
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    log = tmp_path_factory.mktemp("emulator") / "mps-emulator.log"
    env = {**os.environ, "MPS_EMULATOR_SECRET_KEY": SECRET_KEY}
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "mps-emulator"), "--port", "0", "--wait-seconds", "0.5", "--run-seconds", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # The banner names the address once the socket listens.
        while (match := re.search(r"listening on (http://\S+)", log.read_text())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mps-emulator did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Emulator(process, match.group(1))
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process.poll() is None:
            process.kill()


@pytest.fixture(scope="module")
def dag_run(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Migrate a fresh Airflow home, then ``airflow dags test`` the user's DAG once."""
    home = tmp_path_factory.mktemp("airflow-home")
    images = home / "images"
    # Only this run's settings: the unit-test session's AIRFLOW* variables must not leak in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT": emulator.connection(),
            "AIRFLOW_VAR_MPS_IMAGE_BASE": images.as_uri(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    airflow = str(BIN / "airflow")
    migrate = subprocess.run(
        [airflow, "db", "migrate"], cwd=home, env=env, capture_output=True, text=True, check=False
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    test = subprocess.run(
        [airflow, "dags", "test", DAG_ID],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        runs = db.execute("SELECT state FROM dag_run WHERE dag_id = ?", (DAG_ID,))
        run_states = [state for (state,) in runs]
        task_states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ?", (DAG_ID,)))
    return {
        "returncode": test.returncode,
        "output": test.stdout + test.stderr,
        "run_states": run_states,
        "task_states": task_states,
        "images": images,
    }


def calls(emulator: Emulator, action: str) -> list[dict[str, Any]]:
    return [call for call in emulator.get("/_emulator/requests") if call["Action"] == action]


def evidence(dag_run: dict[str, Any]) -> str:
    return f"airflow dags test exited {dag_run['returncode']}; its output ends:\n{dag_run['output'][-6000:]}"


def test_the_run_succeeds_with_every_task(dag_run):
    assert (dag_run["returncode"], dag_run["run_states"], dag_run["task_states"]) == (
        0,
        ["success"],
        dict.fromkeys(("pick_subject", "create_image", "wait_for_image", "save_images"), "success"),
    ), evidence(dag_run)


def test_the_create_waited_in_its_trigger(dag_run):
    # Airflow's own words, on 2.11 as on 3.x, when `dags test` runs a deferred task's trigger.
    assert "running trigger in line" in dag_run["output"], evidence(dag_run)


def test_exactly_one_task_was_created_from_the_prompt_pulled_through_xcom(dag_run, emulator):
    creates = calls(emulator, "CreateAigcImageTask")
    tasks = emulator.get("/_emulator/tasks")

    assert [(call["ErrorCode"], call["Fault"]) for call in creates] == [(None, None)], evidence(dag_run)
    assert [(task["Status"], task["Request"]) for task in tasks] == [
        (
            "DONE",
            {"Prompt": EXPECTED_PROMPT, "ModelName": "Hunyuan", "ExtraParameters": {"AspectRatio": "1:1"}},
        )
    ]


def test_the_sensor_and_the_transfer_used_the_task_id_and_saved_its_images(dag_run, emulator):
    [task] = emulator.get("/_emulator/tasks")
    saved = sorted(path for path in dag_run["images"].rglob("*") if path.is_file())

    # The transfer names each file after the run and the TaskId it pulled from the create's XCom.
    assert [(path.parent.name, path.name) for path in saved] == [(task["TaskId"], "0.png")], evidence(dag_run)
    assert saved[0].read_bytes() == emulator.get(f"/images/{task['TaskId']}/0.png")
    # At least one describe each by the trigger (which saw DONE), the sensor and the transfer; none failed.
    describes = [call["ErrorCode"] for call in calls(emulator, "DescribeAigcImageTask")]
    assert (len(describes) >= 3, set(describes)) == (True, {None}), describes
