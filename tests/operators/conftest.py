from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


@pytest.fixture
def task_logs() -> Iterator[Callable[[], list[str]]]:
    """
    What operators and hooks logged so far in the test, as ``"<level>: <message>"`` lines.

    Airflow 3 task and hook loggers write through structlog, which pytest's ``caplog`` does not see.
    """
    import structlog

    with structlog.testing.capture_logs() as logs:
        yield lambda: [f"{entry['log_level']}: {entry['event']}" for entry in logs]
