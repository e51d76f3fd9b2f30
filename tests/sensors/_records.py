"""Read what a finished ``dag.test()`` run left in the metadata database."""

from __future__ import annotations

from typing import Any

from tests.operators._airflow_records import xcom_model


def xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """Every XCom of the run but the extra links' (``tests.links._links``), as ``{(task_id, key): value}``."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    model = xcom_model()
    with create_session() as session:
        rows = session.execute(
            select(model.task_id, model.key, model.value).where(
                model.dag_id == dag_id, model.run_id == run_id
            )
        ).all()
        return {
            (row.task_id, row.key): model.deserialize_value(row)
            for row in rows
            if not row.key.startswith("_link_")
        }


def states(dag_id: str, run_id: str) -> dict[str, str | None]:
    """The final state of every task instance of the run, as ``{task_id: state}``."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.state).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
            )
        ).all()
        return {row.task_id: (str(row.state) if row.state else None) for row in rows}
