from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.operators._task_logs import capture_task_logs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def task_logs() -> Iterator[Callable[[], list[str]]]:
    """
    What operators and hooks logged so far in the test, as ``"<level>: <message>"`` lines.

    Airflow 3 task and hook loggers write through structlog, which pytest's ``caplog`` does not see;
    Airflow 2 ones write through the stdlib ``airflow.task`` logger.  Both land in one list, in order.
    """
    with capture_task_logs() as entries:
        yield lambda: [f"{entry['log_level']}: {entry['event']}" for entry in entries]
