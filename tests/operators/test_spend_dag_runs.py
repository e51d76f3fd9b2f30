"""
The spend guard in real DAG runs: ``max_images`` and the image budget, judged by the emulator's log.

The budget is counted in a ``redis-server`` subprocess, as a deployment counts it.  The mapped
fan-out runs with ``airflow dags test`` in its own process, with ``[metrics]`` pointed at a UDP
socket on loopback, so the StatsD lines read here are what a StatsD daemon would receive.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG

from airflow_provider_mps.core.budget import ImageBudget, reserve_images
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.utils.rate_limit import clear_rate_limiters
from airflow_provider_mps.utils.shared_quota import clear_storages
from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS
from tests.operators._airflow_records import task_states
from tests.operators._dag_runs import run_dag
from tests.utils.redis_server import module_redis_server

SPEND_DAGS = Path(__file__).resolve().parent / "spend_dags"
BIN = Path(sys.executable).parent
BUDGET_ENV = "AIRFLOW__TENCENTCLOUD_MPS__IMAGE_BUDGET"
STORE_ENV = "AIRFLOW__TENCENTCLOUD_MPS__QUOTA_STORAGE_URI"
START = pendulum.datetime(2025, 1, 1, tz="UTC")


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    yield from module_redis_server(tmp_path_factory)


@pytest.fixture
def budget_store(redis_server, monkeypatch):
    """An empty Redis as ``quota_storage_uri`` and a budget of 20 images a day, in this process's config."""
    redis_server.flush()
    clear_storages()
    clear_rate_limiters()
    monkeypatch.setenv(STORE_ENV, redis_server.uri)
    monkeypatch.setenv(BUDGET_ENV, "20 per day")
    yield redis_server.uri
    # The process's limiters count in this Redis while the store is set: later tests must not.
    clear_rate_limiters()
    clear_storages()


#: Airflow 3.0's ``dag.test()`` and ``airflow dags test`` print no task's exception (3.1+ and 2.11 do):
#: there the counts at the emulator and the task states are checked, the messages are not.
PRINTS_TASK_ERRORS = AIRFLOW_V_3_1_PLUS or not AIRFLOW_V_3_0_PLUS


def logged(caplog, capfd) -> str:
    """What the run logged: through logging (Airflow 2) or the task runner's stdout (Airflow 3)."""
    captured = capfd.readouterr()
    return caplog.text + captured.out + captured.err


def names(expected: str, text: str) -> bool:
    """Whether ``text`` holds ``expected``, where this Airflow line prints task errors."""
    return expected in text if PRINTS_TASK_ERRORS else True


def batch_dag(dag_id: str, prompts: int, **operator_kwargs) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        MpsCreateAigcImageBatchOperator(
            task_id="batch",
            requests=[f"Catalogue shot of product {number}" for number in range(prompts)],
            retries=0,
            **operator_kwargs,
        )
    return dag


def test_a_batch_over_max_images_sends_nothing_and_names_the_count_and_the_cap(
    airflow_home, mps_conn, caplog, capfd
):
    run = run_dag(batch_dag("spend_batch_cap", 30, max_images=10))

    assert task_states(run.run_id, "spend_batch_cap")[("batch", -1)][0] == "failed"
    assert mps_conn.tasks() == []
    assert names(
        "Invalid output_image_count (the sum over 30 requests) 30: asks for 30 images, more than "
        "max_images=10 allows, so nothing was sent",
        logged(caplog, capfd),
    )


def test_a_batch_within_its_cap_but_over_what_is_left_of_the_budget_sends_nothing(
    airflow_home, mps_conn, budget_store, caplog, capfd
):
    # 12 of the 20 images of the day are already counted for this account.
    key = f"{mps_conn.secret_id}@{mps_conn.endpoint}"
    reserve_images(
        key, 12, budget=ImageBudget("20 per day", "test"), storage_uri=budget_store, what="earlier runs"
    )

    run = run_dag(batch_dag("spend_batch_budget", 10, max_images=10))

    assert task_states(run.run_id, "spend_batch_budget")[("batch", -1)][0] == "failed"
    assert mps_conn.tasks() == []
    assert names(
        "The image budget 20 per day ([tencentcloud_mps] image_budget) cannot cover the 10 image(s) of "
        "the 10 item(s) of the batch 'batch': 12 of 20 are used in the current window, so nothing was sent",
        logged(caplog, capfd),
    )


def test_a_batch_the_budget_covers_is_sent_whole_and_counted(
    airflow_home, mps_conn, budget_store, caplog, capfd
):
    run = run_dag(batch_dag("spend_batch_fits", 8, shared_fields={"output_image_count": 2}))

    assert task_states(run.run_id, "spend_batch_fits")[("batch", -1)][0] == "success"
    assert len(mps_conn.tasks()) == 8
    text = logged(caplog, capfd)
    assert "Reserved 16 image(s) for the 8 item(s) of the batch 'batch'" in text
    assert "16 of 20 used in the window" in text


class StatsdListener:
    """A UDP socket on loopback, read while Airflow runs (Airflow's own metrics would fill its buffer)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.lines += self.sock.recv(65535).decode().splitlines()

    def close(self) -> list[str]:
        """Stop reading once what was sent has arrived; return every line."""
        if self._stop.is_set():
            return self.lines
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(TimeoutError):
            while True:
                self.lines += self.sock.recv(65535).decode().splitlines()
        self.sock.close()
        return self.lines


@pytest.fixture
def statsd_listener():
    listener = StatsdListener()
    yield listener
    listener.close()


def total(lines: list[str], metric: str) -> int:
    tags = "conn_id=tencentcloud_mps_default,model=Hunyuan"
    pattern = re.compile(rf"^airflow\.tencentcloud_mps\.{metric},{tags}:(\d+)\|c$")
    return sum(int(match.group(1)) for line in lines if (match := pattern.match(line)))


def start_dags_test(dag_id: str, home: Path, **env_options: str) -> subprocess.Popen[str]:
    """Start ``airflow dags test dag_id`` in its own process, on the Airflow home ``home``."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(SPEND_DAGS),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **{f"AIRFLOW__{name.upper()}": value for name, value in env_options.items()},
    }
    return subprocess.Popen(
        [str(BIN / "airflow"), "dags", "test", dag_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen[str], dag_id: str, home: Path) -> tuple[str, dict[int, str]]:
    """Wait for a ``start_dags_test`` process; return its output and its task instances' states."""
    output, _ = process.communicate(timeout=600)
    with contextlib.closing(sqlite3.connect(home / "airflow.db")) as db:
        run_id = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)
        ).fetchone()[0]
        states = dict(
            db.execute(
                "SELECT map_index, state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
            )
        )
    return output, states


def refused_by_budget(output: str, index: int, used: int) -> bool:
    return names(
        "The image budget 20 per day ([tencentcloud_mps] image_budget) cannot cover the 1 image(s) of "
        f"the create of task 'make' [map index {index}]: {used} of 20 are used",
        output,
    )


def test_a_mapped_fanout_of_30_under_a_budget_of_20_sends_20_and_fails_10_naming_the_budget(
    airflow_home, mps_conn, budget_store, statsd_listener
):
    process = start_dags_test(
        "spend_mapped",
        airflow_home,
        metrics__statsd_on="True",
        metrics__statsd_host="127.0.0.1",
        metrics__statsd_port=str(statsd_listener.port),
        metrics__statsd_prefix="airflow",
        metrics__statsd_influxdb_enabled="True",
    )
    output, states = finished(process, "spend_mapped", airflow_home)

    failed = sorted(index for index, state in states.items() if state == "failed")
    assert (len(mps_conn.tasks()), len(failed), len(states)) == (20, 10, 30), output[-4000:]
    assert all(refused_by_budget(output, index, 20) for index in failed), output[-4000:]
    lines = statsd_listener.close()
    assert (total(lines, "images_requested"), total(lines, "creates_refused_by_budget")) == (20, 10), lines


def test_two_airflow_processes_creating_at_once_cannot_overspend_by_one_image(
    airflow_home, mps_conn, budget_store, tmp_path
):
    # Two deployments' worth of Airflow (each its own metadata database, copied from the session's
    # migrated one) run 15 one-image creates each, at the same time, against one Redis.
    homes = []
    for name in ("first", "second"):
        home = tmp_path / name
        home.mkdir()
        shutil.copyfile(airflow_home / "airflow.db", home / "airflow.db")
        homes.append(home)
    processes = [start_dags_test("spend_race", home) for home in homes]
    results = [finished(process, "spend_race", home) for process, home in zip(processes, homes, strict=True)]

    states = [state for _, by_index in results for state in by_index.values()]
    assert (len(mps_conn.tasks()), states.count("success"), states.count("failed")) == (20, 20, 10), [
        output[-3000:] for output, _ in results
    ]
