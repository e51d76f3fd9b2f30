"""What operators and hooks log during a test, on every Airflow line (structlog on 3.x, stdlib on 2.11)."""

from __future__ import annotations

import logging
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator


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


@contextmanager
def capture_task_logs() -> Iterator[list[dict[str, Any]]]:
    """
    Collect log entries (``{"log_level", "event"}``) while the block runs, in order.

    Airflow 3 task and hook loggers write through structlog, which pytest's ``caplog`` does not see;
    Airflow 2 ones write through the stdlib ``airflow.task`` logger.  Both land in one list.
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
            yield entries
        finally:
            for logger in loggers:
                logger.removeHandler(handler)


def request_ids_from_logs(logs: list[str]) -> dict[str, str]:
    """The RequestId of each create, by TaskId, from the hook's "Created MPS AIGC image task" lines."""
    prefix = "info: Created MPS AIGC image task "
    found = {}
    for line in logs:
        if line.startswith(prefix):
            task_id, _, rest = line[len(prefix) :].partition(" (RequestId ")
            found[task_id] = rest.rstrip(").")
    return found
