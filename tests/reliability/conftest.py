"""
Fixtures of the reliability suite, and the summary table printed at the end of the session.

Every case in ``tests/reliability`` adds a row (see ``_harness.run_fault_case``); the table
shows, per case, the requests the emulator received, the creates and describes among them (and
how many failed), the MPS tasks created, the most paid for one prompt, duplicates, orphan warnings,
lost TaskIds and each Airflow task's final state and try number.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV
from tests.reliability._harness import REPORT_ROWS, format_report

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault cases' table when any ran."""
    if not REPORT_ROWS:
        return
    terminalreporter.section("MPS reliability: faults injected by the emulator")
    for line in format_report(REPORT_ROWS):
        terminalreporter.write_line(line)


def connection_json(emulator: EmulatorHandle, **extra: Any) -> str:
    """The emulator's Airflow connection with ``extra`` added to its extras."""
    connection = json.loads(emulator.airflow_connection())
    connection["extra"].update(extra)
    return json.dumps(connection)


@pytest.fixture
def point_connection_at(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Point ``tencentcloud_mps_default`` at an emulator, with extra connection extras."""

    def point(emulator: EmulatorHandle, **extra: Any) -> None:
        monkeypatch.setenv(CONNECTION_ENV, connection_json(emulator, **extra))

    return point
