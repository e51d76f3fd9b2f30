"""The load figures, printed at the end of the session when the load test ran."""

from __future__ import annotations

from typing import Any

#: Figures of each load run, appended by the tests and printed by ``pytest_terminal_summary``.
LOAD_REPORT: list[dict[str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print each load run's figures."""
    if not LOAD_REPORT:
        return
    terminalreporter.section("MPS load: deferred tasks in one triggerer")
    for figures in LOAD_REPORT:
        for key, value in figures.items():
            terminalreporter.write_line(f"{key:<50} {value}")
