"""Validation of MPS TaskIds handed to sensors and transfers (often rendered from templates)."""

from __future__ import annotations

from airflow_provider_mps.exceptions import MpsInvalidParameterError


def validate_mps_task_id(value: object, field: str = "mps_task_id") -> str:
    """
    Return ``value`` stripped of surrounding whitespace if it is a usable MPS TaskId.

    A TaskId often comes from a template or an XCom; an empty render (``""``, ``"None"`` from a
    missing XCom) must fail the task at once instead of polling for a task that cannot exist.

    :param value: the rendered value of the field.
    :param field: the operator field the value came from, named in the error.
    :raises MpsInvalidParameterError: ``value`` is not a string, is blank, or renders to ``"None"``.
    """
    if not isinstance(value, str):
        raise MpsInvalidParameterError(
            field, f"must be an MPS TaskId string, not a {type(value).__name__}.", value
        )
    task_id = value.strip()
    if not task_id:
        raise MpsInvalidParameterError(field, "must be a non-empty MPS TaskId, not blank.", value)
    if task_id == "None":
        raise MpsInvalidParameterError(
            field, "rendered to 'None'; the XCom or value it was templated from is missing.", value
        )
    return task_id
