"""
MpsCreateAigcImageTasksOperator driven directly (``execute`` with a small context) against the emulator.

The context is the one of ``test_mps.py``: a task instance recording XCom pushes and a dict-backed
``task_state_store``.  Everything between the operator and the service is real.  DAG runs through
``dag.test()`` live in ``test_mps_batch_dag_runs.py``.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_mps.emulator.models import FAIL_MARKER_MESSAGE
from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError
from airflow_provider_mps.operators._mps_batch import MAX_CONSECUTIVE_FAILURES
from airflow_provider_mps.operators._mps_batch_submit import LEDGER_CHUNK_SIZE
from airflow_provider_mps.operators._reattach import fingerprint
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageTasksOperator
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS
from tests.operators.test_mps import (
    DictTaskStateStore,
    RecordingTaskInstance,
    kept_for_a_retry,
)

CREATE = "CreateAigcImageTask"


pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


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


def make_operator(**kwargs: Any) -> MpsCreateAigcImageTasksOperator:
    kwargs.setdefault("task_id", "create_batch")
    kwargs.setdefault("poll_interval", 0.1)
    return MpsCreateAigcImageTasksOperator(**kwargs)


def creates(emulator: Any) -> list[dict[str, Any]]:
    return [call for call in emulator.requests() if call["Action"] == CREATE]


def created_by_prompt(emulator: Any) -> dict[str, str]:
    return {task["Request"]["Prompt"]: task["TaskId"] for task in emulator.tasks()}


def request_ids_from_logs(logs: list[str]) -> dict[str, str]:
    """The RequestId of each create, by TaskId, from the hook's "Created MPS AIGC image task" lines."""
    prefix = "info: Created MPS AIGC image task "
    found = {}
    for line in logs:
        if line.startswith(prefix):
            task_id, _, rest = line[len(prefix) :].partition(" (RequestId ")
            found[task_id] = rest.rstrip(").")
    return found


# -- definition ------------------------------------------------------------------------------


def test_template_fields_and_defaults_follow_airflow_conventions():
    operator = make_operator(requests=["a cat"])

    assert MpsCreateAigcImageTasksOperator.template_fields == ("requests", "shared_fields", "region")
    assert (
        operator.mps_conn_id,
        operator.region,
        operator.wait_for_completion,
        operator.deferrable,
        operator.timeout,
        operator.rate_limit,
        operator.max_failed_items,
        operator.durable,
        operator.resubmit_on_retry,
    ) == ("tencentcloud_mps_default", None, False, False, 3600.0, 20.0, 0, True, False)


def test_operator_is_a_resumable_job_of_the_mixin_airflow_provides():
    from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin

    assert MpsCreateAigcImageTasksOperator.__bases__ == (ResumableJobMixin, BaseOperator)


def test_durable_left_at_its_default_never_warns():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_operator(requests=["a cat"])


def test_constructor_is_keyword_only():
    with pytest.raises((TypeError, AirflowException)):
        MpsCreateAigcImageTasksOperator(["a cat"], task_id="batch")  # type: ignore[misc]


def test_hook_is_built_lazily_without_its_own_retries():
    operator = make_operator(requests=["a cat"], mps_conn_id="mps_prod", region="ap-singapore")

    assert "hook" not in vars(operator)
    assert (operator.hook.mps_conn_id, operator.hook.region, operator.hook.retry_limit) == (
        "mps_prod",
        "ap-singapore",
        0,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"requests": ["a cat", "x" * 1001]},
            f"Invalid requests[1].prompt {('x' * 1001)!r:.77}...: must be at most 1000 characters long, "
            "got 1001.",
        ),
        (
            {"requests": ["a cat", 7]},
            "Invalid requests[1] 7: must be a prompt string or a dict of request fields, got int.",
        ),
        (
            {
                "requests": ["a cat"],
                "shared_fields": {"extra_parameters": {"AspectRatio": "wide"}},
                "strict_validation": True,
            },
            "Invalid requests[0].extra_parameters.AspectRatio 'wide': "
            "must be a width:height ratio such as 16:9.",
        ),
        (
            {"requests": ["a cat"], "max_failed_items": -1},
            "Invalid max_failed_items -1: must be a whole number, 0 or more, or None for no limit.",
        ),
        (
            {"requests": ["a cat"], "rate_limit": 0},
            "Invalid rate_limit 0: must be a number of requests per second greater than 0.",
        ),
    ],
)
def test_literal_invalid_values_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(MpsInvalidParameterError) as raised:
        make_operator(**kwargs)

    assert str(raised.value) == message


def test_templated_items_are_left_for_run_time():
    operator = make_operator(requests=["{{ params.subject }}", {"prompt": "{{ 'x' * 2000 }}"}])

    assert operator.requests == ["{{ params.subject }}", {"prompt": "{{ 'x' * 2000 }}"}]


# -- submission ------------------------------------------------------------------------------


def test_execute_creates_one_task_per_item_in_input_order_with_the_shared_fields(mps_conn, task_logs):
    operator = make_operator(
        requests=[
            "a red fox",
            {"prompt": "a blue whale", "extra_parameters": {"AspectRatio": "16:9"}},
            {"Prompt": "a paper boat", "ModelName": "Kling", "ModelVersion": "2.1"},
        ],
        shared_fields={"model_name": "GEM", "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"}},
    )
    context = make_context()

    task_ids = operator.execute(context)

    assert sorted(task["Request"]["Prompt"] for task in mps_conn.tasks()) == [
        "a blue whale",
        "a paper boat",
        "a red fox",
    ]
    by_id = {task["TaskId"]: task["Request"] for task in mps_conn.tasks()}
    assert [by_id[task_id] for task_id in task_ids] == [
        {
            "Prompt": "a red fox",
            "ModelName": "GEM",
            "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
        },
        {"Prompt": "a blue whale", "ModelName": "GEM", "ExtraParameters": {"AspectRatio": "16:9"}},
        {
            "Prompt": "a paper boat",
            "ModelName": "Kling",
            "ModelVersion": "2.1",
            "ExtraParameters": {"AspectRatio": "1:1", "OutputFormat": "png"},
        },
    ]
    request_ids = request_ids_from_logs(task_logs())
    assert context["ti"].xcoms == {
        "return_value": task_ids,
        "failures": [],
        "request_ids": [request_ids[task_id] for task_id in task_ids],
    }
    assert sorted(request_ids.values()) == sorted(call["RequestId"] for call in creates(mps_conn))
    # The record of the batch outlives the success ([state_store] clear_on_success decides).
    assert sorted(context["task_state_store"].values) == [
        "mps_aigc_image_batch.0",
        "mps_aigc_image_batch.submitted",
    ]


def test_requests_rendered_as_json_text_are_accepted(mps_conn):
    operator = make_operator(requests='["a cat", {"prompt": "a dog"}]')

    task_ids = operator.execute(make_context())

    assert created_by_prompt(mps_conn) == {"a cat": task_ids[0], "a dog": task_ids[1]}


def test_an_empty_batch_sends_nothing_and_returns_an_empty_list(mps_conn):
    context = make_context()

    assert make_operator(requests=[]).execute(context) == []
    assert context["ti"].xcoms == {"return_value": [], "failures": [], "request_ids": []}
    assert mps_conn.requests() == []


def test_one_invalid_rendered_item_refuses_the_whole_batch_before_any_call(mps_conn):
    operator = make_operator(requests="{{ params.rows }}")
    operator.requests = ["a cat", {"prompt": "a dog", "colour": "red"}, {"subject": "x"}, "a bird"]

    with pytest.raises(MpsInvalidParameterError) as raised:
        operator.execute(make_context())

    assert str(raised.value) == (
        "Invalid requests[1].colour 'red': is not a CreateAigcImageTask field; the fields are "
        "model_name, model_version, scene_type, prompt, negative_prompt, enhance_prompt, image_infos, "
        "output_image_count, extra_parameters, additional_parameters, store_cos_param, operator. "
        "2 of 4 requests are invalid "
        "(each is logged); nothing was sent."
    )
    assert isinstance(raised.value, AirflowFailException)
    assert mps_conn.requests() == []


def test_creates_are_spaced_at_the_rate_limit(mps_conn):
    rate = 10
    operator = make_operator(requests=[f"lighthouse {n}" for n in range(15)], rate_limit=rate)

    start = time.time()
    task_ids = operator.execute(make_context())

    calls = creates(mps_conn)
    assert [call["ErrorCode"] for call in calls] == [None] * 15
    assert sorted(task_ids) == sorted(task["TaskId"] for task in mps_conn.tasks())
    offsets = [t - start for t in sorted(call["Time"] for call in calls)]
    assert [k for k, offset in enumerate(offsets) if offset < k / rate - 0.002] == []


def test_quota_refusals_are_retried_without_surfacing(mps_conn):
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={CREATE: 3})
    context = make_context()

    task_ids = make_operator(requests=["one", "two", "three", "four"]).execute(context)

    assert [call["ErrorCode"] for call in creates(mps_conn)].count("RequestLimitExceeded") == 3
    assert len(creates(mps_conn)) == 7
    assert created_by_prompt(mps_conn) == dict(zip(["one", "two", "three", "four"], task_ids, strict=True))
    assert context["ti"].xcoms["failures"] == []


def test_an_item_the_service_refuses_is_recorded_and_the_others_are_kept(mps_conn):
    context = make_context()
    operator = make_operator(
        requests=["a cat", {"prompt": "a dog", "model_name": "Seedream"}, "a bird"], max_failed_items=1
    )

    task_ids = operator.execute(context)

    refused = [call for call in creates(mps_conn) if call["ErrorCode"]]
    assert [call["ErrorCode"] for call in refused] == ["InvalidParameterValue.ModelName"]
    by_prompt = created_by_prompt(mps_conn)
    assert task_ids == [by_prompt["a cat"], None, by_prompt["a bird"]]
    [failure] = context["ti"].xcoms["failures"]
    assert failure == {
        "index": 1,
        "stage": "create",
        "code": "InvalidParameterValue.ModelName",
        "message": failure["message"],
        "request_id": refused[0]["RequestId"],
        "mps_task_id": None,
        "possibly_created": False,
    }
    assert "Seedream" in failure["message"]
    assert context["ti"].xcoms["request_ids"][1] == refused[0]["RequestId"]


def test_too_many_refused_items_fail_the_task_without_retry_after_sending_the_rest(mps_conn):
    context = make_context()
    operator = make_operator(requests=[{"prompt": "a dog", "model_name": "Seedream"}, "a cat", "a bird"])

    with pytest.raises(AirflowFailException) as raised:
        operator.execute(context)

    [refused] = [call for call in creates(mps_conn) if call["ErrorCode"]]
    message = context["ti"].xcoms["failures"][0]["message"]
    assert str(raised.value) == (
        "1 of 3 items failed, more than max_failed_items=0; the first, requests[0], failed with "
        f"InvalidParameterValue.ModelName: {message} (RequestId: {refused['RequestId']}). "
        "Every failure is in the 'failures' XCom. The service refused these requests' parameters; "
        "the same requests cannot succeed on a retry, so the task fails without retrying."
    )
    by_prompt = created_by_prompt(mps_conn)
    # Every TaskId was pushed before failing, and each is kept for a retry to re-attach to (3.3+).
    assert context["ti"].xcoms["return_value"] == [None, by_prompt["a cat"], by_prompt["a bird"]]
    stored = context["task_state_store"].values
    task_ids_kept = {
        key: {n: entry.get("TaskId") for n, entry in chunk.items()} if key.endswith(".0") else chunk
        for key, chunk in stored.items()
    }
    assert task_ids_kept == kept_for_a_retry(
        {
            "mps_aigc_image_batch.0": {"1": by_prompt["a cat"], "2": by_prompt["a bird"]},
            "mps_aigc_image_batch.submitted": {"Items": 3},
        }
    )


def test_a_retry_reattaches_to_created_items_and_never_resends_a_possibly_created_one(mps_conn):
    store = DictTaskStateStore()
    prompts = [f"product {n}" for n in range(5)]
    mps_conn.configure(error_code="InternalError", error_burst={CREATE: 1})
    operator = make_operator(requests=prompts)

    # InternalError may mean the task was created: no retry could succeed without resending it.
    with pytest.raises(AirflowFailException) as first:
        operator.execute(make_context(store))

    first_try = created_by_prompt(mps_conn)
    assert len(first_try) == 4
    [lost] = [prompt for prompt in prompts if prompt not in first_try]
    index = prompts.index(lost)
    assert str(first.value).startswith(
        f"1 of 5 items' creates may have created MPS tasks whose TaskIds are lost, more than "
        f"max_failed_items=0; the first, requests[{index}], sent around "
    )
    assert str(first.value).endswith("set resubmit_on_retry=True on the operator.")
    # A clear runs it again: the item is still not resent, the others re-attach.
    context = make_context(store, try_number=2)

    with pytest.raises(AirflowFailException):
        make_operator(requests=prompts).execute(context)

    assert created_by_prompt(mps_conn) == first_try
    assert len(creates(mps_conn)) == 5
    assert context["ti"].xcoms["return_value"] == [first_try.get(prompt) for prompt in prompts]
    assert context["ti"].xcoms["failures"] == [
        {
            "index": index,
            "stage": "create",
            "code": "InternalError",
            "message": "An earlier try's create may have created a task whose TaskId is lost "
            "(Injected by the emulator: InternalError.); it is not resent, to avoid a duplicate task.",
            "request_id": context["ti"].xcoms["failures"][0]["request_id"],
            "mps_task_id": None,
            "possibly_created": True,
        }
    ]


def test_resubmit_on_retry_lets_the_retry_resend_a_possibly_created_item_counting_it(mps_conn, task_logs):
    store = DictTaskStateStore()
    prompts = [f"product {n}" for n in range(3)]
    mps_conn.configure(error_code="InternalError", error_burst={CREATE: 1})

    # Retryable with the opt-in: the failure is an ordinary MpsError.
    with pytest.raises(MpsError) as first:
        make_operator(requests=prompts, resubmit_on_retry=True).execute(make_context(store))

    assert not isinstance(first.value, AirflowFailException)
    [lost] = [prompt for prompt in prompts if prompt not in created_by_prompt(mps_conn)]
    index = prompts.index(lost)

    task_ids = make_operator(requests=prompts, resubmit_on_retry=True).execute(
        make_context(store, try_number=2)
    )

    assert sorted(created_by_prompt(mps_conn)) == prompts
    assert task_ids == [created_by_prompt(mps_conn)[prompt] for prompt in prompts]
    logs = task_logs()
    assert [line.split(" of this request")[0] for line in logs if "Possible duplicate" in line] == [
        f"warning: requests[{index}]: Possible duplicate 1"
    ]
    [resent] = [line for line in logs if "sending it again" in line]
    assert resent.startswith(
        f"warning: requests[{index}]: sending it again, as resubmit_on_retry=True allows, although 1 earlier "
        "create(s) of it may have created a task (the latest sent around "
    )


def test_a_retry_sends_items_that_certainly_failed_and_reattaches_changed_lists_only_where_unchanged(
    mps_conn,
):
    store = DictTaskStateStore()
    first = ["a cat", {"prompt": "a dog", "model_name": "Seedream"}, "a bird"]

    with pytest.raises(AirflowFailException):
        make_operator(requests=first).execute(make_context(store))

    first_try = created_by_prompt(mps_conn)
    # The retry renders a fixed item 1 and a changed item 2: both are sent, item 0 re-attaches.
    second = ["a cat", {"prompt": "a dog", "model_name": "GEM"}, "a bird at night"]
    context = make_context(store, try_number=2)

    task_ids = make_operator(requests=second).execute(context)

    by_prompt = created_by_prompt(mps_conn)
    assert task_ids == [first_try["a cat"], by_prompt["a dog"], by_prompt["a bird at night"]]
    assert len(mps_conn.tasks()) == 4


def test_the_ledger_is_written_as_each_item_is_created_in_chunks(mps_conn):
    writes: list[tuple[str, dict[str, Any]]] = []

    class RecordingStore(DictTaskStateStore):
        def set(self, key: str, value: Any, *, retention: Any = None) -> None:
            writes.append((key, json.loads(json.dumps(value))))
            super().set(key, value)

    count = LEDGER_CHUNK_SIZE + 5
    store = RecordingStore()
    mps_conn.configure(rate_limit=0)
    context = make_context(store)

    task_ids = make_operator(requests=[f"item {n}" for n in range(count)], rate_limit=1000).execute(context)

    # Each item is written before its create leaves (being sent) and once it returns (its TaskId),
    # each write rewriting only that item's chunk; a write carries every change made while the one
    # before it was under way.  Then ResumableJobMixin stores the batch's summary.
    assert count + 1 <= len(writes) <= 2 * count + 1
    assert writes[-1] == ("mps_aigc_image_batch.submitted", {"Items": count})
    assert sorted({key for key, _ in writes[:-1]}) == ["mps_aigc_image_batch.0", "mps_aigc_image_batch.1"]
    for n in (0, 57, LEDGER_CHUNK_SIZE + 4):
        seen = [value[str(n)] for key, value in writes[:-1] if str(n) in value]
        assert (seen[0]["Sending"], seen[0]["Code"]) == (True, "ClientError.TryEnded")
        assert seen[-1]["TaskId"] == task_ids[n]
    assert sorted([value for key, value in writes if key.endswith(".0")][-1], key=int) == [
        str(n) for n in range(LEDGER_CHUNK_SIZE)
    ]
    last_chunk = [value for key, value in writes if key.endswith(".1")][-1]
    assert sorted(last_chunk, key=int) == [str(n) for n in range(LEDGER_CHUNK_SIZE, count)]
    from airflow_provider_mps.validation import build_aigc_image_request

    assert last_chunk["104"] == {
        "f": fingerprint(build_aigc_image_request({"prompt": "item 104"})),
        "TaskId": task_ids[104],
        "RequestId": context["ti"].xcoms["request_ids"][104],
    }


def test_an_error_no_item_can_escape_stops_the_batch(mps_conn):
    mps_conn.configure(error_code="AuthFailure.SecretIdNotFound", error_rate={CREATE: 1.0})
    context = make_context()
    count = 40

    with pytest.raises(MpsError) as raised:
        make_operator(requests=[f"item {n}" for n in range(count)], max_failed_items=None).execute(context)

    sent = len(creates(mps_conn))
    failures = context["ti"].xcoms["failures"]
    assert sent < count
    assert sorted(failure["code"] for failure in failures) == sorted(
        ["AuthFailure.SecretIdNotFound"] * sent + ["NotSubmitted"] * (count - sent)
    )
    assert str(raised.value).startswith("Not all items were sent: the batch stopped at requests[")
    assert str(raised.value).endswith(
        "which failed with AuthFailure.SecretIdNotFound. 40 of 40 items failed; every failure is in the "
        f"'failures' XCom. {what_a_retry_does()}"
    )


def what_a_retry_does() -> str:
    """The last sentence of a stopped batch's error, on this Airflow line (durable)."""
    store = "task_state_store" if AIRFLOW_V_3_3_PLUS else "Airflow Variables"
    return f"A retry re-attaches to the tasks created (kept in {store}) and sends the rest."


def test_a_run_of_service_errors_stops_sending_the_rest_of_the_batch(mps_conn):
    mps_conn.configure(error_code="InternalError", error_rate={CREATE: 1.0})
    context = make_context()
    count = 60

    # Each InternalError may have created a task: no retry can help, so none is made.
    with pytest.raises(AirflowFailException) as raised:
        make_operator(requests=[f"item {n}" for n in range(count)]).execute(context)

    assert f"{MAX_CONSECUTIVE_FAILURES} creates in a row failed with service or network errors" in str(
        raised.value
    )
    sent = len(creates(mps_conn))
    assert MAX_CONSECUTIVE_FAILURES <= sent < count
    codes = [failure["code"] for failure in context["ti"].xcoms["failures"]]
    assert (codes.count("InternalError"), codes.count("NotSubmitted")) == (sent, count - sent)
    assert context["ti"].xcoms["return_value"] == [None] * count


def test_max_failed_items_none_tolerates_any_number_of_failed_items(mps_conn):
    context = make_context()

    task_ids = make_operator(
        requests=[{"prompt": "a dog", "model_name": "Seedream"}, "a cat"], max_failed_items=None
    ).execute(context)

    assert task_ids == [None, created_by_prompt(mps_conn)["a cat"]]
    assert [failure["index"] for failure in context["ti"].xcoms["failures"]] == [0]


# -- waiting ---------------------------------------------------------------------------------


def test_wait_for_completion_pushes_image_urls_per_item_and_records_failed_tasks(mps_conn):
    context = make_context()
    operator = make_operator(
        requests=["a cat", "a dog [emulator:fail]", {"prompt": "a bird", "output_image_count": 2}],
        wait_for_completion=True,
        max_failed_items=1,
    )

    task_ids = operator.execute(context)

    by_prompt = created_by_prompt(mps_conn)
    cat, dog, bird = by_prompt["a cat"], by_prompt["a dog [emulator:fail]"], by_prompt["a bird"]
    assert task_ids == [cat, None, bird]
    xcoms = context["ti"].xcoms
    assert xcoms["image_urls"] == [
        [f"{mps_conn.endpoint}/images/{cat}/0.png"],
        [],
        [f"{mps_conn.endpoint}/images/{bird}/0.png", f"{mps_conn.endpoint}/images/{bird}/1.png"],
    ]
    [failure] = xcoms["failures"]
    assert failure == {
        "index": 1,
        "stage": "wait",
        "code": "FAIL",
        "message": FAIL_MARKER_MESSAGE,
        "request_id": failure["request_id"],
        "mps_task_id": dog,
        "possibly_created": False,
    }
    describe_ids = {call["RequestId"] for call in mps_conn.requests() if call["Action"] != CREATE}
    assert failure["request_id"] in describe_ids


def test_a_failed_wait_keeps_done_items_for_the_retry_and_creates_failed_ones_anew(mps_conn):
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog [emulator:fail]"]
    first_context = make_context(store)

    with pytest.raises(MpsError) as raised:
        make_operator(requests=prompts, wait_for_completion=True).execute(first_context)

    first_try = created_by_prompt(mps_conn)
    [failure] = first_context["ti"].xcoms["failures"]
    assert str(raised.value) == (
        "1 of 2 items failed, more than max_failed_items=0; the first, requests[1], failed with FAIL: "
        f"{FAIL_MARKER_MESSAGE} (RequestId: {failure['request_id']}). "
        "Every failure is in the 'failures' XCom."
    )
    context = make_context(store, try_number=2)

    with pytest.raises(MpsError):
        make_operator(requests=prompts, wait_for_completion=True).execute(context)

    # The batch sends concurrently, so the service's order of the first try's two tasks varies.
    tasks = mps_conn.tasks()
    assert sorted(task["Request"]["Prompt"] for task in tasks) == [
        "a cat",
        "a dog [emulator:fail]",
        "a dog [emulator:fail]",
    ]
    [dog_again] = [task["TaskId"] for task in tasks if task["TaskId"] not in first_try.values()]
    assert context["ti"].xcoms["return_value"] == [first_try["a cat"], None]
    assert context["ti"].xcoms["failures"][0]["mps_task_id"] == dog_again


def test_waiting_times_out_into_timeout_failures(mps_conn):
    mps_conn.configure(wait_seconds=60)
    context = make_context()

    with pytest.raises(MpsError) as raised:
        make_operator(requests=["a cat"], wait_for_completion=True, timeout=0.3).execute(context)

    [failure] = context["ti"].xcoms["failures"]
    assert (failure["stage"], failure["code"], failure["mps_task_id"]) == (
        "wait",
        "Timeout",
        mps_conn.tasks()[0]["TaskId"],
    )
    assert failure["message"].startswith(
        "Still WAIT when waiting ended: 1 of 1 MPS tasks did not finish before "
    )
    assert context["ti"].xcoms["image_urls"] == [[]]
    # An unfinished task stays in the ledger, not marked failed: the retry re-attaches to it (3.3+).
    ledger = context["task_state_store"].values.get("mps_aigc_image_batch.0", {})
    assert {index: (entry["TaskId"], "Status" in entry) for index, entry in ledger.items()} == (
        kept_for_a_retry({"0": (failure["mps_task_id"], False)})
    )
    assert str(raised.value).startswith("1 of 1 items failed")


def test_deferrable_operator_creates_then_defers_one_trigger_for_the_batch(mps_conn, task_logs):
    context = make_context()
    operator = make_operator(
        requests=["a cat", {"prompt": "a dog", "model_name": "Seedream"}, "a bird"],
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        timeout=600,
        max_failed_items=1,
        region="ap-guangzhou",
    )
    before = time.time()

    with pytest.raises(TaskDeferred) as raised:
        operator.execute(context)

    after = time.time()
    by_prompt = created_by_prompt(mps_conn)
    deferred = raised.value
    classpath, kwargs = deferred.trigger.serialize()
    end_time = kwargs.pop("end_time")
    assert (classpath, kwargs) == (
        "airflow_provider_mps.triggers.mps.MpsAigcImageTasksTrigger",
        {
            "mps_task_ids": [by_prompt["a cat"], by_prompt["a bird"]],
            "mps_conn_id": "tencentcloud_mps_default",
            "poll_interval": 2.0,
            "region": "ap-guangzhou",
            "rate_limit": 20.0,
        },
    )
    assert before + 600 <= end_time <= after + 600
    request_ids = request_ids_from_logs(task_logs())
    [refused] = [call for call in creates(mps_conn) if call["ErrorCode"]]
    assert (deferred.method_name, deferred.kwargs) == ("execute_complete", None)
    assert deferred.timeout == datetime.timedelta(seconds=660)
    # What execute_complete needs is pushed before deferring (Airflow keeps a try's XComs across it).
    pushed = context["ti"].xcoms
    assert pushed["return_value"] == [by_prompt["a cat"], None, by_prompt["a bird"]]
    assert pushed["request_ids"] == [
        request_ids[by_prompt["a cat"]],
        refused["RequestId"],
        request_ids[by_prompt["a bird"]],
    ]
    assert [failure["index"] for failure in pushed["failures"]] == [1]
    failures = list(pushed["failures"])

    # Resume as Airflow does: run the trigger, hand its event to execute_complete.
    import asyncio

    async def first_event() -> dict[str, Any]:
        try:
            async for event in deferred.trigger.run():
                return event.payload
        finally:
            await deferred.trigger.cleanup()
        raise AssertionError("no event")

    deferred.trigger.poll_interval = 0.05
    event = asyncio.run(first_event())
    resumed = make_context(context["task_state_store"], ti=context["ti"])

    task_ids = operator.execute_complete(resumed, event)

    assert task_ids == [by_prompt["a cat"], None, by_prompt["a bird"]]
    assert resumed["ti"].xcoms["image_urls"] == [
        [f"{mps_conn.endpoint}/images/{by_prompt['a cat']}/0.png"],
        [],
        [f"{mps_conn.endpoint}/images/{by_prompt['a bird']}/0.png"],
    ]
    assert resumed["ti"].xcoms["failures"] == failures


def test_execute_complete_never_assumes_success():
    context = make_context()
    context["ti"].xcoms.update({"return_value": ["t-1"], "failures": [], "request_ids": ["r-1"]})
    operator = make_operator(requests=["a cat"], wait_for_completion=True, deferrable=True)
    event = {"status": "error", "mps_task_ids": ["t-1"], "results": [None], "message": "Polling failed: X."}

    with pytest.raises(MpsError) as raised:
        operator.execute_complete(context, event)

    assert str(raised.value) == "Polling failed: X."
    # The TaskIds are pushed before failing.
    assert context["ti"].xcoms == {"return_value": ["t-1"], "failures": [], "request_ids": ["r-1"]}


def test_execute_complete_without_the_pushed_batch_fails_with_a_clear_message():
    event = {"status": "success", "mps_task_ids": ["t-1"], "results": [None], "message": ""}

    with pytest.raises(MpsError) as raised:
        make_operator(requests=["a cat"], wait_for_completion=True).execute_complete(make_context(), event)

    assert str(raised.value) == (
        "The batch's TaskIds, RequestIds and failures pushed before deferring are missing from the XComs "
        "of this try; the deferral cannot be resumed."
    )


@pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="before 3.3 the record is Airflow Variables, not the context's"
)
def test_without_a_task_state_store_in_the_context_the_batch_still_runs(mps_conn):
    # Airflow 3.3 leaves the store out of the context of a task it cannot keep state for.
    context = {"ti": BatchTaskInstance()}

    task_ids = make_operator(requests=["a cat", "a dog"]).execute(context)

    assert task_ids == [created_by_prompt(mps_conn)[prompt] for prompt in ("a cat", "a dog")]


# -- retries ----------------------------------------------------------------------------------


def test_a_retry_whose_every_item_has_a_task_waits_for_them_without_sending_a_create(mps_conn, task_logs):
    mps_conn.configure(run_seconds=0.5)
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog"]

    class DiesAfterSubmitting(MpsCreateAigcImageTasksOperator):
        def poll_until_complete(self, external_id: Any, context: Any) -> None:
            raise RuntimeError("Simulated worker loss after every item was created.")

    with pytest.raises(RuntimeError):
        DiesAfterSubmitting(task_id="create_batch", requests=prompts, wait_for_completion=True).execute(
            make_context(store)
        )

    first_try = created_by_prompt(mps_conn)
    assert store.values["mps_aigc_image_batch.submitted"] == {"Items": 2}
    context = make_context(store, try_number=2)

    task_ids = make_operator(requests=prompts, wait_for_completion=True).execute(context)

    assert task_ids == [first_try["a cat"], first_try["a dog"]]
    assert len(creates(mps_conn)) == 2
    assert context["ti"].xcoms["image_urls"] == [[f"{mps_conn.endpoint}/images/{t}/0.png"] for t in task_ids]
    # ResumableJobMixin re-attached to the batch: nothing to create, so no submission at all.
    assert [line for line in task_logs() if "earlier try" in line or "existing job" in line] == [
        "info: Re-attached to 2 MPS task(s) created by an earlier try; 0 item(s) may have been created by "
        "it and are not resent, 0 are sent again.",
        "info: Reconnecting to existing job",
    ]


def test_durable_false_keeps_no_record_of_the_batch(mps_conn):
    store = DictTaskStateStore()
    mps_conn.configure(error_code="InvalidParameterValue", error_burst={CREATE: 1})

    with pytest.raises(AirflowFailException):
        make_operator(requests=["a cat", "a dog"], durable=False).execute(make_context(store))

    assert len(mps_conn.tasks()) == 1
    assert store.values == {}


class Killed(BaseException):
    """What the task runner raises in the main thread when the task is killed (not an Exception)."""


class DiesAtTheFirstTaskId(list):
    """``BatchRun.task_ids`` whose first write kills the main thread, as SIGTERM would mid-submission."""

    def __setitem__(self, index: Any, value: Any) -> None:
        raise Killed("Simulated kill while creates are in flight.")


def test_a_batch_killed_mid_submission_keeps_every_task_id_in_flight_in_its_ledger(mps_conn):
    from airflow_provider_mps.hooks.mps import MpsHook
    from airflow_provider_mps.operators._mps_batch import BatchRun
    from airflow_provider_mps.operators._mps_batch_submit import BatchLedger, submit_batch
    from airflow_provider_mps.utils.rate_limit import RateLimiter
    from airflow_provider_mps.validation import build_aigc_image_request

    mps_conn.configure(latency_seconds={CREATE: 0.2})
    requests = {index: build_aigc_image_request({"prompt": f"item {index}"}) for index in range(6)}
    fingerprints = [fingerprint(request) for request in requests.values()]
    store = DictTaskStateStore()
    hook = MpsHook(retry_limit=0)
    run = BatchRun(task_ids=DiesAtTheFirstTaskId([None] * 6), request_ids=[None] * 6)

    with pytest.raises(Killed):
        submit_batch(
            hook,
            RateLimiter(1000),
            requests,
            fingerprints,
            BatchLedger(store, 6),
            run,
            logging.getLogger(__name__),
        )

    # Every create the service accepted, in flight when the main thread died, is in the ledger.
    created = {task["Request"]["Prompt"]: task["TaskId"] for task in mps_conn.tasks()}
    ledger = store.values["mps_aigc_image_batch.0"]
    assert len(created) >= 1
    assert {
        f"item {index}": entry["TaskId"] for index, entry in ((int(i), e) for i, e in ledger.items())
    } == created


def test_a_clear_of_a_successful_batch_returns_the_same_tasks_without_paying_again(mps_conn):
    # [state_store] clear_on_success left at its default (False): the ledger outlives the success.
    store = DictTaskStateStore()
    prompts = ["a cat", "a dog"]
    first = make_operator(requests=prompts).execute(make_context(store))

    again = make_operator(requests=prompts).execute(make_context(store, try_number=2))

    assert again == first
    assert len(creates(mps_conn)) == 2
