"""The batch operator's tests' helpers: its context and operator, and what the emulator was sent."""

from __future__ import annotations

from typing import Any

from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from tests.operators.conftest import DictTaskStateStore, RecordingTaskInstance

CREATE = "CreateAigcImageTask"


class BatchTaskInstance(RecordingTaskInstance):
    """Also reads back its own XComs, as ``execute_complete`` does after a deferral."""

    task_id = "create_batch"
    map_index = -1

    def xcom_pull(self, *, task_ids: str, key: str, map_indexes: int) -> Any:
        assert (task_ids, map_indexes) == (self.task_id, self.map_index)
        return self.xcoms.get(key)


def make_context(
    store: DictTaskStateStore | None = None, ti: BatchTaskInstance | None = None, *, try_number: int = 1
) -> dict[str, Any]:
    return {
        "ti": ti if ti is not None else BatchTaskInstance(try_number),
        "task_state_store": store if store is not None else DictTaskStateStore(),
    }


def make_operator(**kwargs: Any) -> MpsCreateAigcImageBatchOperator:
    kwargs.setdefault("task_id", "create_batch")
    kwargs.setdefault("poll_interval", 0.1)
    return MpsCreateAigcImageBatchOperator(**kwargs)


def creates(emulator: Any) -> list[dict[str, Any]]:
    return [call for call in emulator.requests() if call["Action"] == CREATE]


def created_by_prompt(emulator: Any) -> dict[str, str]:
    return {task["Request"]["Prompt"]: task["TaskId"] for task in emulator.tasks()}
