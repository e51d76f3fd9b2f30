"""
The real deployment path leaks nothing either, with no line excluded.

A real Airflow (API server, scheduler with LocalExecutor workers, DAG processor, triggerer; the
integration suite's harness, ``tests.integration.airflow_cluster.provider_cluster``) runs with
every component at DEBUG and a Fernet key, against an emulator whose account needs a session
token.  The UI-triggered example (a deferrable operator), the scheduled example (operator and
transfer) and ``dags/security_mps_secrets.py`` (the SDK's own debug logger, a wrong key, a failing
task, a deferrable sensor) run through the REST API.  While two tasks are deferred, their trigger
rows are read from the database (and decrypted, were they encrypted).  Afterwards no file the
cluster wrote (task logs, component logs) and no byte of its database holds the SecretKey, the
token or the wrong key: here the tasks run in their own processes, and Airflow's supervisor logs
no ``MaskSecret`` value.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from tests.integration.airflow_cluster import provider_cluster
from tests.security.conftest import SECRETS, SECURITY_DAGS, connection, database_leaks, files_with_secrets

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.airflow_cluster import AirflowCluster

pytestmark = pytest.mark.integration

UI_DAG = "example_mps_ui_triggered"
SCHEDULED_DAG = "example_mps_scheduled"
SECURITY_DAG = "security_mps_secrets"
FAIL_MARKER = "[emulator:fail]"


@pytest.fixture(scope="module")
def security_emulator_options() -> dict[str, Any]:
    return {"wait_seconds": 0.2, "run_seconds": 0.5}


@pytest.fixture(scope="module")
def fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


@pytest.fixture(scope="module")
def debug_cluster(tmp_path_factory, security_emulator, fernet_key) -> Iterator[AirflowCluster]:
    root = tmp_path_factory.mktemp("security-cluster")
    cluster = provider_cluster(
        root,
        mps_connection=connection(security_emulator.endpoint),
        image_base=(root / "images").as_uri(),
        extra_env={
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "DEBUG",
            "AIRFLOW__CORE__FERNET_KEY": fernet_key,
            "AIRFLOW_CONN_MPS_WRONG_KEY": connection(security_emulator.endpoint, key=SECRETS[2]),
        },
        extra_dags=sorted(SECURITY_DAGS.glob("*.py")),
    )
    with cluster:
        yield cluster


def trigger_rows(cluster: AirflowCluster, fernet_key: str) -> list[tuple[str, str]]:
    """``(classpath, decrypted kwargs)`` of every trigger row in the cluster's database right now."""
    from cryptography.fernet import Fernet

    with sqlite3.connect(f"file:{cluster.home / 'airflow.db'}?mode=ro", uri=True, timeout=10) as db:
        rows = list(db.execute("SELECT classpath, kwargs FROM trigger"))
    fernet = Fernet(fernet_key.encode())
    # As Airflow reads them (Trigger._decrypt_kwargs): plain JSON, or Fernet-encrypted JSON.
    return [
        (classpath, kwargs if kwargs.startswith("{") else fernet.decrypt(kwargs.encode()).decode())
        for classpath, kwargs in rows
    ]


def trigger_on_a_quiet_database(
    cluster: AirflowCluster, dag_id: str, conf: dict[str, Any] | None = None
) -> str:
    """Trigger ``dag_id``; again if SQLite was locked (a 500 "Database error": no run was made)."""
    from tests.integration.airflow_cluster import ClusterError

    for attempt in range(3):
        try:
            return cluster.trigger(dag_id, conf)
        except ClusterError as error:
            if "Database error" not in str(error) or attempt == 2:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")  # pragma: no cover


def deferral_exit_processed(cluster: AirflowCluster, dag_id: str, task_id: str) -> bool:
    """Whether the scheduler has processed the executor event of ``task_id``'s deferring try."""
    log = (cluster.log_dir / "scheduler.log").read_text(errors="replace")
    return (
        "Received executor event with state success for task instance "
        f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}'"
    ) in log


@pytest.fixture(scope="module")
def deployment_runs(debug_cluster, security_emulator, fernet_key) -> dict[str, Any]:
    """Run the DAGs (see the module docstring); return the run ids and the trigger rows seen."""
    cluster = debug_cluster
    emulator = EmulatorHandle.from_server(security_emulator)
    emulator.reset()
    emulator.configure(run_seconds=600)  # keep the deferred tasks waiting until their triggers are read
    cluster.wait_for_dags([UI_DAG, SCHEDULED_DAG, SECURITY_DAG])
    for dag_id in (UI_DAG, SCHEDULED_DAG, SECURITY_DAG):
        cluster.unpause(dag_id)
    runs = {
        UI_DAG: trigger_on_a_quiet_database(
            cluster, UI_DAG, {"prompt": "A locksmith's workbench at night, ink drawing"}
        ),
        SECURITY_DAG: trigger_on_a_quiet_database(cluster, SECURITY_DAG),
    }
    seen: list[tuple[str, str]] = []

    def two_tasks_deferred() -> bool:
        nonlocal seen
        seen = trigger_rows(cluster, fernet_key)
        return len(seen) >= 2

    cluster.wait_for(two_tasks_deferred, timeout=180, what=lambda: f"two trigger rows (seen: {seen})")
    # Let the scheduler take in each deferring worker's exit before the triggers fire: a trigger firing
    # first hits Airflow 3.3's stale-executor-event race (apache/airflow#72716), failing the task.
    for dag_id, task_id in ((UI_DAG, "create_image"), (SECURITY_DAG, "deferred_sensor")):
        cluster.wait_for(
            lambda d=dag_id, t=task_id: deferral_exit_processed(cluster, d, t),
            timeout=120,
            what=lambda d=dag_id, t=task_id: f"the scheduler to process the deferral of {d}.{t}",
        )
    for task in emulator.tasks():
        if FAIL_MARKER in task["Request"]["Prompt"]:
            emulator.force_status(
                task["TaskId"], "FAIL", "Image generation failed: forced by the security test."
            )
        else:
            emulator.force_status(task["TaskId"], "DONE")
    emulator.configure(run_seconds=0)
    runs[SCHEDULED_DAG] = cluster.trigger(SCHEDULED_DAG)
    states = {
        dag_id: cluster.wait_for_run(dag_id, run_id, timeout=240).state for dag_id, run_id in runs.items()
    }
    return {"runs": runs, "states": states, "triggers": seen, "emulator": emulator}


def test_the_dags_ran_to_their_expected_end(debug_cluster, deployment_runs):
    cluster, runs = debug_cluster, deployment_runs["runs"]

    assert deployment_runs["states"] == {
        UI_DAG: "success",
        SECURITY_DAG: "failed",
        SCHEDULED_DAG: "success",
    }, cluster.explain(SECURITY_DAG, runs[SECURITY_DAG])
    security = {
        task_id: ti["state"]
        for task_id, ti in cluster.task_instances(SECURITY_DAG, runs[SECURITY_DAG]).items()
    }
    assert security == {
        "sdk_debug_stream": "success",
        "wrong_key": "failed",
        "failing_task": "failed",
        "deferred_sensor": "success",
    }, cluster.explain(SECURITY_DAG, runs[SECURITY_DAG])


def test_trigger_rows_hold_the_task_and_connection_ids_but_no_credential(deployment_runs):
    triggers = deployment_runs["triggers"]
    task_ids = {task["TaskId"] for task in deployment_runs["emulator"].tasks()}

    assert {classpath for classpath, _ in triggers} == {
        "airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger"
    }
    for _, kwargs in triggers:
        assert "tencentcloud_mps_default" in kwargs
        assert any(task_id in kwargs for task_id in task_ids), kwargs
        assert [secret for secret in SECRETS if secret in kwargs] == []


def test_debug_logging_reached_the_task_logs_with_the_sdk_dumps_redacted(debug_cluster, deployment_runs):
    cluster, run_id = debug_cluster, deployment_runs["runs"][SECURITY_DAG]
    sdk_log = cluster.task_log(SECURITY_DAG, run_id, "sdk_debug_stream", 1)
    wrong_key_log = cluster.task_log(SECURITY_DAG, run_id, "wrong_key", 1)
    failing_log = cluster.task_log(SECURITY_DAG, run_id, "failing_task", 1)

    assert "[debug]" in sdk_log
    assert sdk_log.count("SendRequest") >= 3
    assert sdk_log.count("X-TC-Token: ***") + sdk_log.count("x-tc-token: ***") >= 3
    assert "AuthFailure.SignatureFailure" in wrong_key_log
    assert "Image generation failed: forced by the security test." in failing_log


def test_no_file_the_cluster_wrote_holds_a_secret_and_no_mask_secret_value_is_logged(
    debug_cluster, deployment_runs
):
    root = debug_cluster.root
    written = [path for path in root.rglob("*") if path.is_file() and path.suffix in (".log", "")]

    assert files_with_secrets(root) == {}
    assert any(path.name.startswith("attempt=") for path in written)  # the task logs were there to scan
    assert [str(path) for path in written if "MaskSecret(value=" in path.read_text(errors="replace")] == []


def test_no_byte_of_the_clusters_database_holds_a_secret(debug_cluster, deployment_runs):
    database = debug_cluster.home / "airflow.db"

    assert database_leaks(database) == []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        xcoms = list(db.execute("SELECT dag_id, task_id, key, value FROM xcom"))
        rendered = list(
            db.execute("SELECT dag_id, task_id, rendered_fields FROM rendered_task_instance_fields")
        )
    assert {row[0] for row in xcoms} >= {UI_DAG, SCHEDULED_DAG, SECURITY_DAG}
    assert any("A locksmith's workbench at night" in json.dumps(row[2]) for row in rendered)
