"""
The single operator's policy for creates whose outcome is unknown, and its checks of a stored TaskId.

Driven directly (``execute`` with the small context of ``conftest.py``) against the emulator: a create
that may have created a task fails the task without Airflow retries, recorded and named, unless
``resubmit_on_retry=True``; a stored TaskId is re-attached to only for the same rendered request.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_mps.exceptions import MpsNetworkError, MpsTransientError
from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from tests.operators.conftest import (
    STATE_KEY,
    DictTaskStateStore,
    kept_for_a_retry,
    make_context,
    make_operator,
    request_fingerprint,
    stored_job,
)

CREATE = "CreateAigcImageTask"
POSSIBLY_CREATED_KEY = f"{STATE_KEY}.possibly_created"
OPT_IN = (
    "To let retries send it again, accepting that each possibly created task is paid for (every possible "
    "duplicate is counted in the log), set resubmit_on_retry=True on the operator."
)
AT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def possibly_created(
    request_id: str | None, code: str, at: str, prompt: str = "a cat", message: str = "Injected."
) -> dict[str, Any]:
    return {
        "At": at,
        "RequestId": request_id,
        "Code": code,
        "Message": message,
        "Prompt": repr(prompt),
        "Fingerprint": request_fingerprint(prompt=prompt),
    }


def test_a_create_that_may_have_created_a_task_fails_without_retries_naming_the_request_and_the_opt_in(
    mps_conn, task_logs
):
    mps_conn.configure(error_burst={CREATE: 1}, error_code="InternalError")
    context = make_context()

    with pytest.raises(AirflowFailException) as raised:
        make_operator(prompt="a cat", retries=2).execute(context)

    [create_call] = mps_conn.requests()
    request_id = create_call["RequestId"]
    message = str(raised.value)
    assert re.fullmatch(
        re.escape(
            f"{CREATE} failed with InternalError: Injected by the emulator: InternalError. (RequestId: "
        )
        + re.escape(f"{request_id}) The {CREATE} sent around ")
        + f"(?P<at>{AT})"
        + re.escape(
            f" UTC (RequestId {request_id}, prompt 'a cat') may have created an MPS AIGC image task whose "
            "TaskId is lost, so the task fails without Airflow retries: a retry would send it again and may "
            f"pay twice. Look for that task in the MPS console before running again. {OPT_IN}"
        ),
        message,
    ), message
    at = re.search(AT, message.split("sent around ")[1])[0]  # type: ignore[index]
    assert isinstance(raised.value.__cause__, MpsTransientError)
    # Recorded where a later try (a clear) finds it: Airflow 3.3+'s task_state_store.
    assert context["task_state_store"].values == kept_for_a_retry(
        {
            POSSIBLY_CREATED_KEY: [
                possibly_created(
                    request_id, "InternalError", at, message="Injected by the emulator: InternalError."
                )
            ]
        }
    )
    assert (
        f"warning: Possible duplicate 1 of this request: a {CREATE} sent around {at} UTC (RequestId "
        f"{request_id}, prompt 'a cat') may have been paid for although its TaskId never came back."
    ) in task_logs()


def test_a_create_refused_for_quota_or_never_sent_stays_retryable(mps_conn, monkeypatch):
    mps_conn.configure(error_burst={CREATE: 1}, error_code="RequestLimitExceeded")
    quota = make_operator(task_id="quota", prompt="a cat")
    quota.hook = MpsHook(retry_limit=0)
    context = make_context()

    with pytest.raises(MpsTransientError) as refused:
        quota.execute(context)

    connection = json.loads(mps_conn.airflow_connection())
    connection["extra"]["endpoint"] = "http://127.0.0.1:9"  # discard port: nothing listens
    monkeypatch.setenv("AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT", json.dumps(connection))
    unreachable = make_operator(task_id="unreachable", prompt="a cat")
    unreachable.hook = MpsHook(retry_limit=0)

    with pytest.raises(MpsNetworkError) as never_sent:
        unreachable.execute(context)

    assert not isinstance(refused.value, AirflowFailException)
    assert not isinstance(never_sent.value, AirflowFailException)
    assert (refused.value.code, never_sent.value.code) == (
        "RequestLimitExceeded",
        "ClientNetworkError.ConnectFailed",
    )
    assert context["task_state_store"].values == {}


def test_a_later_try_of_the_same_request_refuses_to_send_it_again_after_a_possible_orphan(mps_conn):
    earlier = possibly_created(None, "ClientNetworkError.Timeout", "2026-01-02 03:04:05")
    store = DictTaskStateStore({POSSIBLY_CREATED_KEY: [earlier]})

    with pytest.raises(AirflowFailException) as raised:
        make_operator(prompt="a cat").execute(make_context(store, try_number=2))

    assert str(raised.value) == (
        f"An earlier try's {CREATE} of this same request, sent around 2026-01-02 03:04:05 UTC (RequestId "
        "none, prompt 'a cat'), may have created an MPS task whose TaskId is lost (1 such create(s) "
        "recorded in the task_state_store). Sending it again may pay twice, so this try fails without "
        f"sending anything and without Airflow retries; look for that task in the MPS console. {OPT_IN}"
    )
    assert mps_conn.requests() == []


def test_resubmit_on_retry_sends_it_again_counting_the_possible_duplicates(mps_conn, task_logs):
    earlier = possibly_created(None, "ClientNetworkError.Timeout", "2026-01-02 03:04:05")
    other_request = possibly_created("r-9", "InternalError", "2026-01-02 03:00:00", prompt="a dog")
    store = DictTaskStateStore({POSSIBLY_CREATED_KEY: [other_request, earlier]})
    context = make_context(store, try_number=2)

    task_id = make_operator(prompt="a cat", resubmit_on_retry=True).execute(context)

    [created] = mps_conn.tasks()
    assert task_id == created["TaskId"]
    assert (
        "warning: Sending this request again, as resubmit_on_retry=True allows, although 1 earlier create(s) "
        "of it may have created a task (the latest sent around 2026-01-02 03:04:05 UTC (RequestId none, "
        "prompt 'a cat'))."
    ) in task_logs()
    assert store.values[STATE_KEY] == stored_job(
        {"TaskId": task_id, "RequestId": context["ti"].xcoms["request_id"]}
    )


def test_a_possible_orphan_of_another_request_does_not_block_this_one(mps_conn):
    other_request = possibly_created("r-9", "InternalError", "2026-01-02 03:00:00", prompt="a dog")
    store = DictTaskStateStore({POSSIBLY_CREATED_KEY: [other_request]})

    task_id = make_operator(prompt="a cat").execute(make_context(store, try_number=2))

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]


def test_a_stored_task_of_another_request_is_never_returned_for_this_one(mps_conn, task_logs):
    # An upstream re-run changed the rendered prompt, then the task was cleared.
    dog = MpsHook().submit_aigc_image_task(prompt="a dog")
    store = DictTaskStateStore({STATE_KEY: stored_job(dog, prompt="a dog")})
    context = make_context(store, try_number=2)

    task_id = make_operator(prompt="a cat", wait_for_completion=True).execute(context)

    by_prompt = {task["Request"]["Prompt"]: task["TaskId"] for task in mps_conn.tasks()}
    assert task_id == by_prompt["a cat"] != dog["TaskId"]
    assert context["ti"].xcoms["image_urls"] == [f"{mps_conn.endpoint}/images/{task_id}/0.png"]
    assert (
        f"warning: MPS task {dog['TaskId']} from an earlier try was created for another request (the "
        "rendered fields changed since); creating a new task for this request instead of returning that one."
    ) in task_logs()
    assert store.values[STATE_KEY] == stored_job(
        {"TaskId": task_id, "RequestId": context["ti"].xcoms["request_id"]}
    )


def test_the_task_id_is_stored_as_soon_as_the_create_returns(mps_conn):
    writes: list[tuple[str, Any]] = []

    class RecordingStore(DictTaskStateStore):
        def set(self, key: str, value: Any, *, retention: Any = None) -> None:
            writes.append((key, value))
            super().set(key, value)

    class DiesBeforeTheMixinStoresIt(MpsCreateAigcImageTaskOperator):
        def submit_job(self, context: Any) -> Any:
            super().submit_job(context)
            raise RuntimeError("Simulated worker loss right after the create returned.")

    store = RecordingStore()

    with pytest.raises(RuntimeError):
        DiesBeforeTheMixinStoresIt(task_id="create", prompt="a cat").execute(make_context(store))

    [created] = mps_conn.tasks()
    # The create is recorded as being sent before it leaves, then its TaskId is stored at once,
    # and the being-sent record is taken back.
    [sending] = writes[0][1]
    assert (writes[0][0], sending["Code"], sending["Prompt"]) == (
        POSSIBLY_CREATED_KEY,
        "ClientError.TryEnded",
        "'a cat'",
    )
    assert writes[1:] == [
        (
            STATE_KEY,
            stored_job({"TaskId": created["TaskId"], "RequestId": mps_conn.requests()[0]["RequestId"]}),
        )
    ]
    assert POSSIBLY_CREATED_KEY not in store.values


class Killed(BaseException):
    """The process dying (not an Exception: nothing in the operator catches it)."""


def test_a_worker_killed_before_the_task_id_is_stored_makes_the_retry_refuse_to_pay_again(mps_conn):
    class StoreOfAKilledWorker(DictTaskStateStore):
        def set(self, key: str, value: Any, *, retention: Any = None) -> None:
            if key == STATE_KEY:  # the service answered; the worker dies before the answer is kept
                raise Killed("The worker was killed after the service answered the create.")
            super().set(key, value)

    store = StoreOfAKilledWorker()
    with pytest.raises(Killed):
        make_operator(prompt="a cat").execute(make_context(store))
    [created] = mps_conn.tasks()

    with pytest.raises(AirflowFailException) as raised:
        make_operator(prompt="a cat").execute(make_context(DictTaskStateStore(store.values), try_number=2))

    assert [task["TaskId"] for task in mps_conn.tasks()] == [created["TaskId"]]
    assert str(raised.value).startswith(
        "An earlier try's CreateAigcImageTask of this same request, sent around "
    )
    assert "prompt 'a cat'" in str(raised.value)
    assert str(raised.value).endswith(OPT_IN)


def test_a_clear_of_a_successful_task_returns_the_same_task_and_images_without_paying_again(mps_conn):
    # [state_store] clear_on_success left at its default (False): the store outlives the success.
    store = DictTaskStateStore()
    first = make_operator(prompt="a cat", wait_for_completion=True).execute(make_context(store))
    cleared = make_context(store, try_number=2)

    again = make_operator(prompt="a cat", wait_for_completion=True).execute(cleared)

    assert again == first
    assert [task["TaskId"] for task in mps_conn.tasks()] == [first]
    assert cleared["ti"].xcoms["image_urls"] == [f"{mps_conn.endpoint}/images/{first}/0.png"]
