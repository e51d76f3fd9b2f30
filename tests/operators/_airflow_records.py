"""Read what a finished ``dag.test()`` run left in the metadata database (XComs, task instances)."""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS


def xcom_model() -> Any:
    """The XCom table's model: ``XComModel`` on Airflow 3, ``XCom`` on Airflow 2."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        return XComModel
    from airflow.models.xcom import XCom

    return XCom


def xcoms(run_id: str, dag_id: str) -> dict[tuple[str, int, str], Any]:
    """Every XCom of the run, as ``{(task_id, map_index, key): value}``."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    model = xcom_model()
    with create_session() as session:
        rows = session.execute(
            select(model.task_id, model.map_index, model.key, model.value).where(
                model.dag_id == dag_id, model.run_id == run_id
            )
        ).all()
        return {
            (row.task_id, row.map_index, row.key): model.deserialize_value(row)
            for row in rows
            if not row.key.startswith("_link_")
        }


def task_states(run_id: str, dag_id: str) -> dict[tuple[str, int], tuple[str | None, int]]:
    """Every task instance of the run, as ``{(task_id, map_index): (state, try_number)}``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(
                TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state, TaskInstance.try_number
            ).where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
        ).all()
        return {
            (row.task_id, row.map_index): (str(row.state) if row.state else None, row.try_number)
            for row in rows
        }
