from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class _ListHandler(logging.Handler):
    """Appends each stdlib log record once (it may pass several loggers holding this handler)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        super().__init__(level=logging.DEBUG)
        self.entries = entries
        self._seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if any(record is seen for seen in self._seen):
            return
        self._seen.append(record)
        self.entries.append({"log_level": record.levelname.lower(), "event": record.getMessage()})


@pytest.fixture
def task_logs() -> Iterator[Callable[[], list[str]]]:
    """
    What operators and hooks logged so far in the test, as ``"<level>: <message>"`` lines.

    Airflow 3 task and hook loggers write through structlog, which pytest's ``caplog`` does not see;
    Airflow 2 ones write through the stdlib ``airflow.task`` logger.  Both land in one list, in order.
    """
    try:
        import structlog.testing
    except ImportError:  # Airflow 2 does not install structlog
        capture: Any = nullcontext([])
    else:
        capture = structlog.testing.capture_logs()
    with capture as entries:
        handler = _ListHandler(entries)
        loggers = [logging.getLogger(), logging.getLogger("airflow.task")]
        for logger in loggers:
            logger.addHandler(handler)
        try:
            yield lambda: [f"{entry['log_level']}: {entry['event']}" for entry in entries]
        finally:
            for logger in loggers:
                logger.removeHandler(handler)
