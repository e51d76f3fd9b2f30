"""The rows of the bad-input tables (``tests/test_bad_input*.py``) and a recorder of failed tries."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
from airflow.providers.common.compat.sdk import get_listener_manager, hookimpl

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

RETRIES = 2
BAD = "MpsInvalidParameterError"
PROMPT_RULE = "a prompt or at least one reference image (image_infos) is required."


@dataclass(frozen=True)
class Upstream:
    """XComArgs of the DAG's helper tasks, for rows whose bad value comes from an upstream task."""

    a_dict: Any = None
    nothing: Any = None


@dataclass(frozen=True)
class BadInput:
    """
    One bad input.

    :param id: the row's name, also its Airflow task id.
    :param target: what is given the bad value: operator, sensor, transfer or connection.
    :param at: ``parse`` (refused when the operator is built) or ``run`` (refused when it runs).
    :param make: builds the Airflow task (inside the DAG) from the upstream XComArgs.
    :param error: the exception class name.
    :param message: the exact message; a ``re:`` prefix makes it a full-match regex.
    :param retried: Airflow retries the task (only a missing connection); before Airflow 3.3 a create
        operator's retry then fails with the operator's refusal to create again.
    :param connection: fields of the row's own connection ``bad_<id>`` (the emulator's plus these).
    :param xfail: why the row fails today, if it does.
    """

    id: str
    target: str
    at: str
    make: Callable[[Upstream], Any]
    error: str
    message: str
    retried: bool = False
    connection: dict[str, Any] | None = None
    xfail: str | None = None

    @property
    def conn_id(self) -> str:
        return f"bad_{self.id}"


def op(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    """A create operator named ``row_id`` (kwargs may be functions of the upstream XComArgs)."""

    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("prompt", "a lighthouse")
        return MpsCreateAigcImageTaskOperator(task_id=row_id, **values)

    return make


def sensor(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("poke_interval", 0.1)
        values.setdefault("timeout", 30)
        return MpsAigcImageTaskSensor(task_id=row_id, **values)

    return make


def transfer(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("mps_task_id", "1-AigcImage-0123456789abcdef0123456789abcdef")
        values.setdefault("destination", "file:///tmp/mps-bad-input-never-written")
        return MpsAigcImagesToObjectStorageOperator(task_id=row_id, **values)

    return make


def operator_row(row_id: str, at: str, message: str, **kwargs: Any) -> BadInput:
    """A row giving the create operator ``row_id`` the bad ``kwargs`` (see :func:`op`)."""
    return BadInput(row_id, "operator", at, op(row_id, **kwargs), BAD, message)


def sensor_row(row_id: str, at: str, message: str, *, error: str = BAD, **kwargs: Any) -> BadInput:
    """A row giving the sensor ``row_id`` the bad ``kwargs`` (see :func:`sensor`)."""
    return BadInput(row_id, "sensor", at, sensor(row_id, **kwargs), error, message)


def transfer_row(row_id: str, at: str, message: str, **kwargs: Any) -> BadInput:
    """A row giving the transfer ``row_id`` the bad ``kwargs`` (see :func:`transfer`)."""
    return BadInput(row_id, "transfer", at, transfer(row_id, **kwargs), BAD, message)


def invalid(field_: str, shown: str, rule: str) -> str:
    return f"Invalid {field_} {shown}: {rule}"


@dataclass(frozen=True)
class TryFailure:
    """One failed try, as the task's failure or retry callback saw it."""

    task_id: str
    try_number: int
    error_type: str
    message: str


class FailureRecorder:
    """
    A listener recording each failed try's exception (``dag.test()`` runs listeners in-process).

    Airflow's ``on_task_instance_failed`` listener receives the exception on every supported line,
    where a failure callback's context lacks it under ``dag.test()`` before Airflow 3.2.
    """

    def __init__(self) -> None:
        self.failures: list[TryFailure] = []

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.failures.append(
            TryFailure(task_instance.task_id, task_instance.try_number, type(error).__name__, str(error))
        )

    @contextmanager
    def listening(self) -> Iterator[FailureRecorder]:
        """Record while the block runs."""
        manager = get_listener_manager()
        manager.add_listener(self)
        try:
            yield self
        finally:
            manager.pm.unregister(self)


def row_param(row: BadInput) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)
