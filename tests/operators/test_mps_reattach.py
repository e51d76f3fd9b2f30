"""MpsCreateAigcImageTaskOperator on a retry: re-attaching to an earlier try's task, or creating anew."""

from __future__ import annotations

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_mps.emulator.models import FAIL_MARKER
from airflow_provider_mps.hooks.mps import MpsHook
from tests.operators.conftest import STATE_KEY, DictTaskStateStore, make_context, make_operator, stored_job

# -- re-attach -------------------------------------------------------------------------------


def test_retry_reattaches_to_the_running_task_and_waits_for_it_instead_of_creating_another(mps_conn):
    mps_conn.configure(run_seconds=1.0)
    first = MpsHook().submit_aigc_image_task(prompt="a cat")
    store = DictTaskStateStore({STATE_KEY: stored_job(first)})
    context = make_context(store, try_number=2)

    task_id = make_operator(prompt="a cat", wait_for_completion=True).execute(context)

    assert task_id == first["TaskId"]
    assert [task["TaskId"] for task in mps_conn.tasks()] == [first["TaskId"]]
    assert context["ti"].xcoms == {
        "request_id": first["RequestId"],
        "image_urls": [f"{mps_conn.endpoint}/images/{task_id}/0.png"],
    }
    assert store.values == {STATE_KEY: stored_job(first)}


def test_retry_without_waiting_returns_the_earlier_task_id_without_creating_another(mps_conn):
    first = MpsHook().submit_aigc_image_task(prompt="a cat")
    context = make_context(DictTaskStateStore({STATE_KEY: stored_job(first)}), try_number=2)

    task_id = make_operator(prompt="a cat").execute(context)

    assert task_id == first["TaskId"]
    assert [action["Action"] for action in mps_conn.requests()] == [
        "CreateAigcImageTask",
        "DescribeAigcImageTask",
    ]
    assert context["ti"].xcoms == {"request_id": first["RequestId"]}


def test_retry_of_a_deferrable_operator_defers_again_on_the_earlier_task(mps_conn):
    mps_conn.configure(run_seconds=60)
    first = MpsHook().submit_aigc_image_task(prompt="a cat")
    context = make_context(DictTaskStateStore({STATE_KEY: stored_job(first)}), try_number=2)

    with pytest.raises(TaskDeferred) as raised:
        make_operator(prompt="a cat", wait_for_completion=True, deferrable=True).execute(context)

    assert raised.value.kwargs == {"mps_task_id": first["TaskId"]}
    assert len(mps_conn.tasks()) == 1


def test_retry_after_the_earlier_task_failed_creates_a_new_task(mps_conn):
    mps_conn.configure(run_seconds=0, wait_seconds=0)
    failed = MpsHook().submit_aigc_image_task(prompt=f"a cat {FAIL_MARKER}")
    store = DictTaskStateStore({STATE_KEY: failed})

    task_id = make_operator(prompt="a cat").execute(make_context(store, try_number=2))

    assert [task["TaskId"] for task in mps_conn.tasks()] == [failed["TaskId"], task_id]


def test_retry_after_the_service_forgot_the_task_creates_a_new_task(mps_conn, task_logs):
    store = DictTaskStateStore({STATE_KEY: stored_job({"TaskId": "1-AigcImage-gone", "RequestId": "r-0"})})

    task_id = make_operator(prompt="a cat").execute(make_context(store, try_number=2))

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]
    assert (
        "warning: MPS task 1-AigcImage-gone from an earlier try is unknown to the service "
        "(ResourceNotFound.TaskNotFound); creating a new one." in task_logs()
    )


def test_retry_without_a_stored_task_creates_one(mps_conn):
    # The earlier try failed before it created anything: nothing to re-attach to, nothing refused.
    context = make_context(try_number=2)

    task_id = make_operator(prompt="a cat", retries=1).execute(context)

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]


def test_durable_false_creates_a_new_task_on_every_try(mps_conn):
    first = MpsHook().submit_aigc_image_task(prompt="a cat")
    store = DictTaskStateStore({STATE_KEY: stored_job(first)})

    task_id = make_operator(prompt="a cat", durable=False).execute(make_context(store, try_number=2))

    assert [task["TaskId"] for task in mps_conn.tasks()] == [first["TaskId"], task_id]


# -- retries before Airflow 3.3 (no task_state_store) ----------------------------------------


def test_resubmit_on_retry_changes_nothing_where_the_retry_reattaches(mps_conn):
    first = MpsHook().submit_aigc_image_task(prompt="a cat")
    context = make_context(DictTaskStateStore({STATE_KEY: stored_job(first)}), try_number=2)

    task_id = make_operator(prompt="a cat", resubmit_on_retry=True).execute(context)

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id] == [first["TaskId"]]
