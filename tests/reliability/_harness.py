"""
Run a DAG against the emulator while it injects faults, and account for every MPS task it made.

:func:`run_fault_case` runs the DAG with ``dag.test()`` (through ``tests.operators._dag_runs.run_dag``),
captures the task logs, then reads Airflow's records (task instance states and tries, XComs,
the exceptions each try failed with) and the emulator's (every request received, every task
created).  From them it computes the figures of the suite's summary table:

* **tasks** — MPS tasks the service created (emulator ``GET /_emulator/tasks``);
* **paid** — the most billable tasks created for one prompt (a task that ended ``FAIL`` is not billed):
  1 is what the user asked for, 0 where nothing was created, 2 a duplicate;
* **duplicates** — billable tasks beyond one per creating Airflow task;
* **orphan warnings** — the hook's WARNING that a failed create may have created a task whose
  TaskId is lost (the one window that cannot be closed: the response was lost after the service
  accepted the request);
* **lost** — created TaskIds that reached neither an XCom nor a task log line, beyond those the
  orphan warnings account for.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.operators._airflow_records import task_states, xcoms
from tests.operators._dag_runs import run_dag
from tests.operators._task_logs import capture_task_logs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle

CREATE = "CreateAigcImageTask"
DESCRIBE = "DescribeAigcImageTask"

#: The hook's WARNING when a create failed after the request may have reached the service.
ORPHAN_WARNING = "may have been paid for although its TaskId never came back"

#: Rows of the summary table, appended by every case and printed by ``pytest_terminal_summary``.
REPORT_ROWS: list[dict[str, Any]] = []


@dataclass
class TryFailure:
    """One failed try, as the task's failure or retry callback saw it."""

    task_id: str
    map_index: int
    try_number: int
    error_type: str
    message: str


@dataclass
class FaultRun:
    """Everything one fault case left behind, in Airflow and in the emulator."""

    case: str
    state: str
    requests: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    xcoms: dict[tuple[str, int, str], Any]
    states: dict[tuple[str, int], tuple[str | None, int]]
    logs: list[str]
    failures: list[TryFailure] = field(default_factory=list)
    creating_tasks: int = 0

    def calls(self, action: str) -> list[tuple[str | None, str | None]]:
        """``(ErrorCode, Fault)`` of every call of ``action``, in arrival order."""
        return [(r["ErrorCode"], r["Fault"]) for r in self.requests if r["Action"] == action]

    def faulted_calls(self, action: str) -> list[tuple[str | None, str | None]]:
        """The calls of ``action`` that failed (an error code or a fault)."""
        return [call for call in self.calls(action) if call != (None, None)]

    @property
    def task_ids(self) -> list[str]:
        """TaskIds of the MPS tasks created, in creation order."""
        return [task["TaskId"] for task in self.tasks]

    @property
    def reported_task_ids(self) -> set[str]:
        """Created TaskIds that appear in an XCom value or a task log line."""
        text = json.dumps(list(self.xcoms.values()), default=str) + "\n".join(self.logs)
        return {task_id for task_id in self.task_ids if task_id in text}

    @property
    def orphan_warnings(self) -> list[str]:
        """The task log's WARNINGs that a create may have left an orphaned task."""
        return [line for line in self.logs if line.startswith("warning: ") and ORPHAN_WARNING in line]

    @property
    def billable(self) -> list[dict[str, Any]]:
        """The tasks MPS may bill: every task but those that ended ``FAIL`` (a FAIL costs nothing)."""
        return [task for task in self.tasks if task.get("Status") != "FAIL"]

    @property
    def paid(self) -> int:
        """The most billable MPS tasks the service created for one prompt (0 when it created none)."""
        return max(Counter(task["Request"].get("Prompt") for task in self.billable).values(), default=0)

    @property
    def duplicates(self) -> int:
        """Billable MPS tasks beyond one per creating Airflow task."""
        return max(0, len(self.billable) - self.creating_tasks)

    @property
    def lost(self) -> int:
        """Created TaskIds reported nowhere, beyond those the orphan warnings account for."""
        unreported = len(self.task_ids) - len(self.reported_task_ids)
        return max(0, unreported - len(self.orphan_warnings))

    def failure_messages(self, task_id: str) -> list[tuple[int, str, str]]:
        """``(try_number, exception type, message)`` of every failed try of ``task_id``."""
        return [(f.try_number, f.error_type, f.message) for f in self.failures if f.task_id == task_id]


class FailureRecorder:
    """
    ``on_retry_callback`` / ``on_failure_callback`` recording each failed try's exception.

    ``dag.test()`` runs callbacks in the test process, so the recorder sees the exception object
    itself (Airflow keeps no exception in its database).

    :param on_retry: also called (with the context) when a try fails and will be retried, e.g.
        to end a fault that should last for the first try only.
    :param on_failure: also called (with the context) when a task fails for good, e.g. to end a
        fault that should hit one task only.
    """

    def __init__(
        self,
        on_retry: Callable[[Any], None] | None = None,
        on_failure: Callable[[Any], None] | None = None,
    ) -> None:
        self.failures: list[TryFailure] = []
        self._on_retry = on_retry
        self._on_failure = on_failure

    def _record(self, context: Any) -> None:
        ti = context["ti"]
        error = context.get("exception")
        self.failures.append(
            TryFailure(
                task_id=ti.task_id,
                map_index=ti.map_index,
                try_number=ti.try_number,
                error_type=type(error).__name__,
                message=str(error),
            )
        )

    def on_failure(self, context: Any) -> None:
        """The task failed for good."""
        self._record(context)
        if self._on_failure is not None:
            self._on_failure(context)

    def on_retry(self, context: Any) -> None:
        """The try failed; the task will be retried."""
        self._record(context)
        if self._on_retry is not None:
            self._on_retry(context)

    def callbacks(self) -> dict[str, Any]:
        """Operator keyword arguments installing the recorder."""
        return {"on_failure_callback": self.on_failure, "on_retry_callback": self.on_retry}


def clear_knobs_on_retry(emulator: EmulatorHandle, **knobs: Any) -> Callable[[Any], None]:
    """A retry hook that sets ``knobs`` on the emulator: the fault lasted for the failed try only."""

    def clear(context: Any) -> None:
        emulator.configure(**knobs)

    return clear


def _log_lines(entries: Iterable[dict[str, Any]]) -> list[str]:
    return [f"{entry.get('log_level')}: {entry.get('event')}" for entry in entries]


def run_fault_case(
    case: str,
    dag: Any,
    emulators: EmulatorHandle | Callable[[], list[EmulatorHandle]],
    *,
    recorder: FailureRecorder | None = None,
    creating_tasks: int,
    during: Callable[[], Any] | None = None,
    settled: Callable[[list[dict[str, Any]]], bool] | None = None,
) -> FaultRun:
    """
    Run ``dag`` once with ``dag.test()``, collect both sides' records and add a table row.

    :param case: the case name shown in the summary table.
    :param dag: the DAG, built in the test.
    :param emulators: the emulator whose request log and tasks are read after the run, or (when it
        was restarted during the run) a function returning each of its incarnations, oldest first.
    :param recorder: the failure recorder the DAG's tasks report to.
    :param creating_tasks: how many Airflow task instances create an MPS task each.
    :param during: a context-manager factory entered around the run (e.g. a fault thread).
    :param settled: for calls the emulator may still be handling after the run (a slow call the
        client gave up on), a condition on the last incarnation's request log to wait for first.
    """
    import contextlib

    with capture_task_logs() as entries, (during or contextlib.nullcontext)():
        run = run_dag(dag)
    handles = emulators() if callable(emulators) else [emulators]
    if settled is not None:
        _wait_until(lambda: settled(handles[-1].requests()), what="the emulator to finish its calls")
    requests = [request for handle in handles for request in handle.requests()]
    tasks = list({task["TaskId"]: task for handle in handles for task in handle.tasks()}.values())
    result = FaultRun(
        case=case,
        state=str(run.state),
        requests=requests,
        tasks=tasks,
        xcoms=xcoms(run.run_id, dag.dag_id),
        states=task_states(run.run_id, dag.dag_id),
        logs=_log_lines(entries),
        failures=list(recorder.failures) if recorder else [],
        creating_tasks=creating_tasks,
    )
    REPORT_ROWS.append(_row(result))
    return result


def _wait_until(condition: Callable[[], bool], *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.05)


def _row(result: FaultRun) -> dict[str, Any]:
    actions = Counter(r["Action"] for r in result.requests)
    refused_creates = len(result.faulted_calls(CREATE))
    tally = Counter(f"{state}/{tries}" for state, tries in result.states.values())
    states = " ".join(f"{key}x{count}" for key, count in sorted(tally.items()))
    return {
        "case": result.case,
        "requests": len(result.requests),
        "creates": f"{actions[CREATE]} ({refused_creates} failed)",
        "describes": f"{actions[DESCRIBE]} ({len(result.faulted_calls(DESCRIBE))} failed)",
        "tasks": len(result.tasks),
        "paid": result.paid,
        "duplicates": result.duplicates,
        "orphan_warnings": len(result.orphan_warnings),
        "lost": result.lost,
        "final": f"{result.state}: {states}",
    }


def format_report(rows: list[dict[str, Any]]) -> list[str]:
    """The summary table, one line per case, fitting one screen."""
    columns = [
        ("case", "case"),
        ("requests", "reqs"),
        ("creates", "creates (failed)"),
        ("describes", "describes (failed)"),
        ("tasks", "tasks"),
        ("paid", "paid"),
        ("duplicates", "dup"),
        ("orphan_warnings", "orphan warn"),
        ("lost", "lost"),
        ("final", "run: task instances state/try x count"),
    ]
    widths = {key: max(len(title), *(len(str(row[key])) for row in rows)) for key, title in columns}
    widths["final"] = len(columns[-1][1])

    def line(values: dict[str, Any]) -> str:
        cells = [str(values[key]).ljust(widths[key]) for key, _ in columns[:-1]]
        return " | ".join([*cells, str(values["final"])])

    header = line(dict(columns))
    return [header, "-" * min(len(header) + 20, 160), *(line(row) for row in rows)]
