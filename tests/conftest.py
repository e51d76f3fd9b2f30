"""Session-wide test setup: an isolated, migrated SQLite Airflow home shared by the whole run.

Airflow reads its configuration when it is first imported, so the environment is set here, at
import time of the root conftest, before any test module imports Airflow (the installed Airflow
line is read from the package metadata for the same reason).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.exceptions import MpsInvalidParameterError

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO_ROOT / "dags_examples"

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mps-test-airflow-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(EXAMPLE_DAGS)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# The OpenLineage provider (the `openlineage` extra) emits from a forked process after every task
# event; tests/openlineage switches it on with a file transport for the tests that assert on events.
os.environ.setdefault("AIRFLOW__OPENLINEAGE__DISABLED", "True")
if int(version("apache-airflow").split(".")[0]) < 3:
    # Airflow 2's unit-test mode defaults to the LocalExecutor, which refuses SQLite as soon as a
    # scheduler dependency loads it (a sensor's reschedule check); dag.test() runs tasks in-process.
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")


@pytest.fixture
def fresh_rate_limiters() -> Iterator[None]:
    """
    The process's rate limiters start and end the test empty (they are shared by every hook).

    Modules whose tests all need it say ``pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")``.
    """
    from airflow_provider_mps.utils.rate_limit import clear_rate_limiters

    clear_rate_limiters()
    yield
    clear_rate_limiters()


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


def fresh_interpreter_json(script: str, *args: str) -> Any:
    """Run ``script`` with ``args`` in a fresh interpreter, warnings off; return its last line's JSON."""
    import json

    process = subprocess.run(
        [sys.executable, "-c", script, *args],
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


def refusal(fields: dict[str, Any], **kwargs: Any) -> MpsInvalidParameterError:
    """The error ``build_aigc_image_request(fields, **kwargs)`` refuses the request with."""
    from airflow_provider_mps.exceptions import MpsInvalidParameterError
    from airflow_provider_mps.validation import build_aigc_image_request

    with pytest.raises(MpsInvalidParameterError) as raised:
        build_aigc_image_request(fields, **kwargs)
    return raised.value


def run_dag(dag, **test_kwargs):
    """
    Run ``dag`` with ``dag.test()`` whether or not it lives in a DAG bundle, on every Airflow line.

    Airflow 2.11 runs the DAG object as it is (and calls the run's date ``execution_date``).
    Airflow 3 needs the DAG serialized in the metadata database, which the DAG processor does for
    the files of a bundle: 3.0 for its execution API, 3.1+ for ``dag.test()`` to create the run.
    Airflow publishes no call that registers a DAG built inside a test, so it is written there the
    way the DAG processor writes a parsed file (:func:`_write_serialized_dag`).

    :param dag: the DAG to run.
    :param test_kwargs: passed to ``dag.test()`` (``run_conf``, ``logical_date``, ...).
    :return: the finished DagRun.
    """
    from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS

    if AIRFLOW_V_3_0_PLUS:
        _write_serialized_dag(dag)
    elif "logical_date" in test_kwargs:
        test_kwargs["execution_date"] = test_kwargs.pop("logical_date")
    return dag.test(**test_kwargs)


def _write_serialized_dag(dag) -> None:
    """Write ``dag`` to the metadata database as the DAG processor writes a parsed file (Airflow 3)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG, SerializedDAG
    from airflow.utils.session import create_session

    from airflow_provider_mps.version_compat import AIRFLOW_V_3_1_PLUS

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        if AIRFLOW_V_3_1_PLUS:
            # (bundle, version, dags, import errors, parse duration, warnings): the same on 3.1-3.3.
            dags = [LazyDeserializedDAG.from_dag(dag)]
            update_dag_parsing_results_in_db("dags-folder", None, dags, {}, None, set(), session=session)
        else:
            # What Airflow 3.0's DagBag sets on a DAG it did not load from the bundle's folder.
            dag.relative_fileloc = dag.fileloc
            dags = [LazyDeserializedDAG(data=SerializedDAG.to_dict(dag))]
            update_dag_parsing_results_in_db("dags-folder", None, dags, {}, set(), session=session)
