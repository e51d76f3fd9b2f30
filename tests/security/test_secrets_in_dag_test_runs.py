"""
No credential in anything the example DAGs leave behind, with every logger at DEBUG (``dag.test()``).

All the example DAGs, plus ``dags/security_mps_secrets.py`` (the SDK's own debug logger, a wrong
key, a failing task), run with ``dag.test()`` in a subprocess with a fresh metadata database and
``AIRFLOW__LOGGING__LOGGING_LEVEL=DEBUG``, against an emulator whose account needs a session token.
Then the SecretKey, the token and the wrong key must appear nowhere: not in the task logs (all the
run's output), the exception messages and tracebacks in them, the SDK's request dumps, the
rendered template fields, the XComs or any other row of the database.

One line is excluded, exactly: Airflow 3.3's in-process supervisor, which only ``dag.test()`` and
``airflow dags test`` use, logs each ``MaskSecret`` message verbatim at DEBUG
(:data:`~tests.security.conftest.IN_PROCESS_MASK_SECRET_LINE`).  The real deployment path (see
``test_secrets_in_a_real_deployment.py``) logs no such line, and nothing is excluded there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import (
    EXAMPLE_DAGS,
    IN_PROCESS_MASK_SECRET_LINE,
    SECRETS,
    SECURITY_DAGS,
    connection,
    database_leaks,
    leaks,
    table_rows,
)

RUNS: list[tuple[str, dict[str, Any]]] = [
    ("example_mps_scheduled", {}),
    ("example_mps_ui_triggered", {"prompt": "A lighthouse keeper's key ring, ink drawing"}),
    ("example_mps_data_pipeline", {}),
    ("example_mps_batch_catalogue", {"limit": 3}),
    ("security_mps_secrets", {}),
]


@dataclass
class DagTestRuns:
    output: str
    database: Path
    returncode: int


@pytest.fixture(scope="module")
def dag_test_runs(tmp_path_factory: pytest.TempPathFactory, security_emulator) -> DagTestRuns:
    """Every DAG of :data:`RUNS` run once with ``dag.test()``, at DEBUG, in a fresh Airflow home."""
    root = tmp_path_factory.mktemp("security-dag-test")
    home, dags = root / "airflow-home", root / "dags"
    shutil.copytree(EXAMPLE_DAGS, dags, ignore=shutil.ignore_patterns("__pycache__"))
    for dag_file in SECURITY_DAGS.glob("*.py"):
        shutil.copy2(dag_file, dags / dag_file.name)
    env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
            "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT": connection(security_emulator.endpoint),
            "AIRFLOW_CONN_MPS_WRONG_KEY": connection(security_emulator.endpoint, key=SECRETS[2]),
            "AIRFLOW_VAR_MPS_IMAGE_BASE": (root / "images").as_uri(),
        }
    )
    home.mkdir()
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("_dag_test_runner.py")), json.dumps(RUNS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    (root / "output.log").write_text(result.stdout)
    return DagTestRuns(output=result.stdout, database=home / "airflow.db", returncode=result.returncode)


def test_every_dag_ran_with_debug_logging_and_the_sdk_dumping_its_requests(dag_test_runs):
    output = dag_test_runs.output

    assert dag_test_runs.returncode == 0, output[-3000:]
    finished = [
        line for line in output.splitlines() if line.startswith("===== dag.test ") and "finished" in line
    ]
    assert finished == [
        "===== dag.test example_mps_scheduled finished: success =====",
        "===== dag.test example_mps_ui_triggered finished: success =====",
        "===== dag.test example_mps_data_pipeline finished: success =====",
        "===== dag.test example_mps_batch_catalogue finished: success =====",
        "===== dag.test security_mps_secrets finished: failed =====",
    ]
    assert "[debug    ]" in output
    # The SDK's own debug dumps of both clients, headers redacted.
    assert output.count("SendRequest:") >= 10
    assert output.count("X-TC-Token: ***") + output.count("x-tc-token: ***") == output.count("SendRequest:")
    assert output.count("Authorization: ***") + output.count("authorization: ***") == output.count(
        "SendRequest:"
    )


def test_exceptions_of_the_failing_tasks_are_in_the_output_without_any_key(dag_test_runs):
    output = dag_test_runs.output

    assert "airflow_provider_mps.exceptions.MpsApiError: CreateAigcImageTask failed with " in output
    assert "AuthFailure.SignatureFailure" in output
    assert "airflow_provider_mps.exceptions.MpsTaskFailedError: MPS task " in output
    assert "Image generation failed: the prompt asked the emulator to fail this task." in output
    assert output.count("Traceback (most recent call last)") >= 2


def test_no_secret_in_the_output_but_airflows_own_in_process_mask_secret_line(dag_test_runs):
    leaked = leaks(dag_test_runs.output)
    airflows_own = [line for line in leaked if IN_PROCESS_MASK_SECRET_LINE.fullmatch(line)]

    assert [line for line in leaked if line not in airflows_own] == []


def test_no_secret_anywhere_in_the_metadata_database(dag_test_runs):
    assert database_leaks(dag_test_runs.database) == []


def test_rendered_fields_and_xcoms_were_written_and_hold_no_secret(dag_test_runs):
    database = dag_test_runs.database
    rendered = table_rows(
        database, "SELECT dag_id, task_id, rendered_fields FROM rendered_task_instance_fields"
    )
    xcom_values = table_rows(database, "SELECT dag_id, task_id, key, value FROM xcom")

    # The scan above saw real rows: rendered prompts and pushed TaskIds of every DAG.
    assert {row[0] for row in rendered} >= {
        "example_mps_scheduled",
        "example_mps_ui_triggered",
        "security_mps_secrets",
    }
    assert any("A watercolor postcard of" in str(row[2]) for row in rendered)
    assert {row[0] for row in xcom_values} >= {row[0] for row in rendered}
    for row in rendered + xcom_values:
        assert not any(secret in str(row) for secret in SECRETS), row
