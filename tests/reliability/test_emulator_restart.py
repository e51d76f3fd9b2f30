"""
The service goes away mid-wait and comes back with its tasks: the wait survives, nothing is re-created.

The emulator runs with a state file, so its tasks survive a restart.  While an Airflow task waits
(sync operator, deferred operator, deferrable sensor), a watcher thread stops the emulator as soon
as the first describe arrives, keeps it down for a second (every poll meanwhile is refused), and
starts a new emulator on the same port and state file.  Once the new one is polled, the watcher
marks the task DONE.  Nothing depends on how fast the machine is: each step waits for the
previous one to be seen.
"""

from __future__ import annotations

import re
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.reliability._dags import CREATOR, fault_dag
from tests.reliability._harness import CREATE, DESCRIBE, FailureRecorder, run_fault_case

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.reliability

#: How long the emulator stays down; every poller polls more often than this.
OUTAGE_SECONDS = 1.0


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.02)


def _described(handle: EmulatorHandle) -> bool:
    return any(request["Action"] == DESCRIBE for request in handle.requests())


class StoppedEmulator:
    """What a stopped emulator incarnation received and held, read from its in-process backend."""

    def __init__(self, server: ThreadedEmulatorServer, tasks: list[dict[str, Any]]) -> None:
        self._server = server
        self._tasks = tasks

    def requests(self) -> list[dict[str, Any]]:
        return self._server.backend.requests()

    def tasks(self) -> list[dict[str, Any]]:
        return self._tasks


class RestartMidWait:
    """A thread restarting the emulator once the first describe arrives (see the module docstring)."""

    def __init__(self, server: ThreadedEmulatorServer, options: dict[str, Any]) -> None:
        self.server = server
        self.options = options
        self.handles: list[Any] = [EmulatorHandle.from_server(server)]
        self.tasks_before: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="restart-mid-wait", daemon=True)

    def _run(self) -> None:
        try:
            first = self.handles[0]
            _wait_for(lambda: _described(first), "the first describe")
            self.tasks_before = first.tasks()
            port = self.server.port
            self.server.stop()
            # The handle talks to the port, which the next incarnation takes over.
            self.handles[0] = StoppedEmulator(self.server, self.tasks_before)
            time.sleep(OUTAGE_SECONDS)
            self.server = ThreadedEmulatorServer(port=port, **self.options)
            self.server.start()
            second = EmulatorHandle.from_server(self.server)
            self.handles.append(second)
            _wait_for(lambda: _described(second), "a describe after the restart")
            for task in second.tasks():
                second.force_status(task["TaskId"], "DONE")
        except BaseException as error:  # reported by __exit__
            self.error = error

    def __enter__(self) -> RestartMidWait:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(timeout=90)
        if self.error is not None:
            raise AssertionError(f"The restart thread failed: {self.error!r}") from self.error

    def stop(self) -> None:
        self._thread.join(timeout=90)
        self.server.stop()


@pytest.fixture
def restartable_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An emulator of its own with a state file; tasks stay RUN until the restart thread says DONE."""
    options = {"state_file": str(tmp_path / "mps-state.json"), "wait_seconds": 0.2, "run_seconds": 600}
    server = ThreadedEmulatorServer(port=0, **options)
    server.start()
    restart = RestartMidWait(server, options)
    monkeypatch.setenv("AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT", restart.handles[0].airflow_connection())
    yield restart
    restart.stop()


@pytest.mark.parametrize("actor", ["sync", "deferred", "deferred_sensor"])
def test_wait_survives_an_emulator_restart_and_the_task_persists_across_it(
    airflow_home, restartable_emulator, actor
):
    restart = restartable_emulator
    recorder = FailureRecorder()

    run = run_fault_case(
        f"emulator restarted mid-wait ({actor})",
        fault_dag(f"reliability_restart_{actor}", recorder, [actor], timeout=120, sensor_timeout=120),
        lambda: restart.handles,
        recorder=recorder,
        creating_tasks=1,
        during=lambda: restart,
    )

    first, second = restart.handles
    [before] = restart.tasks_before
    [after] = second.tasks()
    # The task outlived the restart: same TaskId, creation time and request, now DONE.
    assert {k: after[k] for k in ("TaskId", "CreatedAt", "Request")} == {
        k: before[k] for k in ("TaskId", "CreatedAt", "Request")
    }
    assert after["Status"] == "DONE"
    assert [r["Action"] for r in first.requests()].count(CREATE) == 1
    assert [r["Action"] for r in second.requests()].count(CREATE) == 0
    expected_states = {(CREATOR[actor], -1): ("success", 1)}
    if actor != CREATOR[actor]:
        expected_states[(actor, -1)] = ("success", 1)
    assert run.states == expected_states
    assert run.xcoms[(CREATOR[actor], -1, "return_value")] == after["TaskId"]
    assert run.xcoms[(actor, -1, "image_urls")] == after["ImageUrls"]
    assert (run.duplicates, run.lost, run.orphan_warnings, run.failures) == (0, 0, [], [])
    # Polls during the outage were refused before anything was sent, and retried.
    refused = [line for line in run.logs if "ClientNetworkError.ConnectFailed" in line]
    assert refused, run.logs
    refused_call = (
        rf"{DESCRIBE} failed with ClientNetworkError\.ConnectFailed: Could not connect to the service, so "
        r"the request was not sent: .+"
    )
    # The sync wait runs the same trigger in-process, so every actor logs the same retry line.
    retry_line = (
        rf"warning: Polling MPS task {after['TaskId']} failed \(attempt \d+\), retrying in \d+\.\d s: "
        + refused_call
    )
    assert all(re.fullmatch(retry_line, line) for line in refused), refused
