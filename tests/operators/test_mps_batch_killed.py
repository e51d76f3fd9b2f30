"""
A batch whose worker dies while creates are in flight never pays twice on its retry.

The kill is simulated where it matters: the service has created the task and answered, and the
process dies before that answer reaches the ``task_state_store``.  From then on nothing the dead
try does reaches the store, as after a SIGKILL.  The ledger is written ahead (each item is recorded
as being sent before its create leaves), so the retry knows which items may have been created.
"""

from __future__ import annotations

from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from tests.operators._batch import (
    CREATE,
    created_by_prompt,
    creates,
    make_context,
    make_operator,
)
from tests.operators.conftest import DictTaskStateStore

PROMPTS = [f"catalogue item {n}" for n in range(12)]


class Killed(BaseException):
    """The process dying (not an Exception: nothing in the operator catches it)."""


class StoreOfAKilledWorker(DictTaskStateStore):
    """A store that the process stops reaching the moment the first created TaskId is written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.dead = False

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        answered = isinstance(value, dict) and any(
            isinstance(entry, dict) and "TaskId" in entry for entry in value.values()
        )
        if self.dead or answered:
            self.dead = True
            raise Killed("The worker was killed after the service answered a create.")
        super().set(key, value, retention=retention)


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


def kill_mid_batch(mps_conn: Any) -> tuple[DictTaskStateStore, dict[str, str]]:
    """Run a first try until it dies; return what the store kept and the tasks the service created."""
    mps_conn.configure(rate_limit=0, latency_seconds={CREATE: 0.2})  # several creates in flight at once
    store = StoreOfAKilledWorker()

    with pytest.raises(Killed):
        make_operator(requests=PROMPTS, rate_limit=1000).execute(make_context(store))

    mps_conn.configure(latency_seconds={})
    return DictTaskStateStore(store.values), created_by_prompt(mps_conn)


def test_a_retry_after_a_kill_mid_batch_fails_rather_than_resend_the_creates_in_flight(mps_conn):
    store, first_try = kill_mid_batch(mps_conn)
    assert first_try  # the service created at least the task whose answer killed the worker

    with pytest.raises(AirflowFailException) as raised:
        make_operator(requests=PROMPTS).execute(make_context(store, try_number=2))

    # No item the first try sent was sent again (each may have been created); the items it never
    # sent were sent once.  Every prompt has at most one task.
    created = created_by_prompt(mps_conn)
    assert {prompt: created[prompt] for prompt in first_try} == first_try
    assert len(creates(mps_conn)) == len(created)
    assert "items' creates may have created MPS tasks whose TaskIds are lost" in str(raised.value)
    assert "ClientError.TryEnded" in str(raised.value)


def test_with_room_for_failed_items_the_retry_creates_the_rest_once_and_names_the_ones_in_flight(mps_conn):
    store, first_try = kill_mid_batch(mps_conn)
    context = make_context(store, try_number=2)

    task_ids = make_operator(requests=PROMPTS, max_failed_items=len(PROMPTS)).execute(context)

    created = created_by_prompt(mps_conn)
    failures = context["ti"].xcoms["failures"]
    in_flight = {PROMPTS[failure["index"]] for failure in failures}
    # Every prompt was created at most once; the ones in flight at the kill are failures naming
    # why, the rest have their task.
    assert len(creates(mps_conn)) == len(created)
    assert first_try.keys() <= in_flight | created.keys()
    assert [failure["possibly_created"] for failure in failures] == [True] * len(failures)
    assert {failure["code"] for failure in failures} == {"ClientError.TryEnded"}
    assert in_flight >= set(first_try)
    assert [task_id is None for task_id in task_ids] == [prompt in in_flight for prompt in PROMPTS]
    assert {PROMPTS[n]: task_id for n, task_id in enumerate(task_ids) if task_id} == {
        prompt: task_id for prompt, task_id in created.items() if prompt not in in_flight
    }
