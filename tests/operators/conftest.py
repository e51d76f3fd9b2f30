"""Fixtures and helpers of the operator tests: task logs, a recording context, the create operator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS
from tests.operators._task_logs import capture_task_logs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

STATE_KEY = "mps_aigc_image_task"

#: Tests of re-attaching through the task_state_store.
needs_task_state_store = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="task_state_store (re-attach on retry) arrived in Airflow 3.3"
)
#: Tests of what a retry does where there is no task_state_store.
before_task_state_store = pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3+ re-attaches on retry through the task_state_store"
)


@pytest.fixture
def task_logs() -> Iterator[Callable[[], list[str]]]:
    """
    What operators and hooks logged so far in the test, as ``"<level>: <message>"`` lines.

    Airflow 3 task and hook loggers write through structlog, which pytest's ``caplog`` does not see;
    Airflow 2 ones write through the stdlib ``airflow.task`` logger.  Both land in one list, in order.
    """
    with capture_task_logs() as entries:
        yield lambda: [f"{entry['log_level']}: {entry['event']}" for entry in entries]


def request_fingerprint(**fields: Any) -> str:
    """The fingerprint the operator stores with a TaskId, for a request of these fields."""
    from airflow_provider_mps.operators._reattach import fingerprint
    from airflow_provider_mps.validation import build_aigc_image_request

    return fingerprint(build_aigc_image_request(fields))


def stored_job(job: dict[str, Any], prompt: str = "a cat") -> dict[str, Any]:
    """What the operator stores for a created task: TaskId, RequestId and the request's fingerprint."""
    return {
        "TaskId": job["TaskId"],
        "RequestId": job["RequestId"],
        "Fingerprint": request_fingerprint(prompt=prompt),
    }


class RecordingTaskInstance:
    """The slice of a RuntimeTaskInstance the operator uses: XCom pushes and a try number."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.stats_tags: dict[str, str] = {}
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class DictTaskStateStore:
    """The ``task_state_store`` accessor API (get/set/delete) over a dict."""

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def make_context(store: DictTaskStateStore | None = None, *, try_number: int = 1) -> dict[str, Any]:
    return {
        "ti": RecordingTaskInstance(try_number),
        "task_state_store": store if store is not None else DictTaskStateStore(),
    }


def kept_for_a_retry(values: dict[str, Any]) -> dict[str, Any]:
    """What the store holds after a failed try: ``values``, on every line."""
    return values


def make_operator(**kwargs: Any) -> MpsCreateAigcImageTaskOperator:
    kwargs.setdefault("task_id", "create")
    kwargs.setdefault("poll_interval", 0.1)
    return MpsCreateAigcImageTaskOperator(**kwargs)
