"""Session-wide test setup: an isolated, migrated SQLite Airflow home shared by the whole run.

Airflow reads its configuration when it is first imported, so the environment is set here, at
import time of the root conftest, before any test module imports Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "dags_examples"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mps-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The migrated Airflow home of this test session (migrated once, reused by every test)."""
    marker = _AIRFLOW_HOME / ".migrated"
    if not marker.exists():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True,
            env=os.environ.copy(),
            stdout=subprocess.DEVNULL,
        )
        marker.touch()
    return _AIRFLOW_HOME


def run_dag(dag, **test_kwargs):
    """
    Run ``dag`` with ``dag.test()`` whether or not it lives in a DAG bundle.

    Airflow 3.3's ``dag.test()`` only runs DAGs that are serialized in the metadata database,
    which the DAG processor does for files in a bundle.  DAGs built inside a test are written
    there directly first, exactly as the processor would write them.

    :param dag: the DAG to run.
    :param test_kwargs: passed to ``dag.test()`` (``conf``, ``logical_date``, ...).
    :return: the finished DagRun.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        update_dag_parsing_results_in_db(
            "dags-folder",
            None,
            [LazyDeserializedDAG.from_dag(dag)],
            {},
            None,
            set(),
            session=session,
        )
    return dag.test(**test_kwargs)
