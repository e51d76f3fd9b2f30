"""The extra link URLs Airflow shows for a finished task instance, on every supported Airflow line."""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.version_compat import AIRFLOW_V_3_0_PLUS


def extra_link_urls(dag: Any, run_id: str, task_id: str) -> dict[str, str | None]:
    """
    Return ``{link name: URL}`` of ``task_id``'s buttons in the run, as the UI gets them.

    Airflow 3 evaluates each link on the worker when the task ends and stores the URL in the XCom
    ``_link_<ClassName>`` that the UI reads; Airflow 2's webserver calls ``get_extra_links`` on the
    DAG's operator when the page is shown.
    """
    from airflow.utils.session import create_session
    from sqlalchemy import select

    task = dag.get_task(task_id)
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        with create_session() as session:
            rows = session.execute(
                select(XComModel.key, XComModel.value).where(
                    XComModel.dag_id == dag.dag_id, XComModel.run_id == run_id, XComModel.task_id == task_id
                )
            ).all()
            stored = {row.key: XComModel.deserialize_value(row) for row in rows}
        return {link.name: stored.get(link.xcom_key) for link in task.operator_extra_links}
    from airflow.models.taskinstance import TaskInstance

    with create_session() as session:
        ti = session.scalar(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        )
        return {link.name: task.get_extra_links(ti, link.name) for link in task.operator_extra_links}
