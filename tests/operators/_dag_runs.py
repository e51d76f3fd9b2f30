"""
Run a DAG built inside a test with ``dag.test()``, on every Airflow line the provider supports.

Airflow 3.1+ only runs DAGs serialized in the metadata database (what the DAG processor writes for
files in a bundle); Airflow 3.0 needs them there for its execution API; Airflow 2.11 runs the DAG
object, but records Dataset events only for a DAG synced to the database.
:func:`tests.conftest.run_dag` covers 3.3; this helper is the same on every line, deciding by the
provider's version flags.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_3_PLUS

if not AIRFLOW_V_3_0_PLUS:
    # Airflow 2's unit-test mode (set by tests/conftest.py) defaults to the LocalExecutor, which refuses
    # SQLite when a sensor's reschedule dependency loads it; dag.test() runs tasks in-process anyway.
    # Set when this module is imported (collection), before Airflow caches the executor's name.
    os.environ.setdefault("AIRFLOW__CORE__EXECUTOR", "SequentialExecutor")


def _write_serialized_dag(dag: Any) -> None:
    """Write ``dag`` to the metadata database as the DAG processor would (Airflow 3.0-3.2)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG, SerializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        DagBundlesManager().sync_bundles_to_db(session=session)
        session.flush()
        if AIRFLOW_V_3_1_PLUS:
            update_dag_parsing_results_in_db(
                "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session=session
            )
        else:
            # What Airflow 3.0's DagBag sets on a DAG it did not load from the bundle's folder.
            dag.relative_fileloc = dag.fileloc
            lazy = LazyDeserializedDAG(data=SerializedDAG.to_dict(dag))
            update_dag_parsing_results_in_db("dags-folder", None, [lazy], {}, set(), session=session)


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """
    Run ``dag`` with ``dag.test()`` and return the finished DagRun, on any supported Airflow line.

    :param dag: the DAG to run.
    :param test_kwargs: passed to ``dag.test()`` (``run_conf``, ``logical_date``, ...);
        ``logical_date`` is passed as ``execution_date`` on Airflow 2.
    """
    if AIRFLOW_V_3_3_PLUS:
        from tests.conftest import run_dag as run_serialized_dag

        return run_serialized_dag(dag, **test_kwargs)
    if AIRFLOW_V_3_0_PLUS:
        _write_serialized_dag(dag)
        return dag.test(**test_kwargs)
    # What Airflow 2's DAG processor does: the DAG and its outlets' Datasets exist in the database,
    # so the Dataset events a task emits are recorded.
    dag.sync_to_db()
    if "logical_date" in test_kwargs:
        test_kwargs["execution_date"] = test_kwargs.pop("logical_date")
    return dag.test(**test_kwargs)
