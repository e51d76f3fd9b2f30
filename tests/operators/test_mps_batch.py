"""
MpsCreateAigcImageBatchOperator driven directly (``execute`` with a small context) against the emulator.

The context is the one of ``test_mps.py`` (helpers in ``conftest.py`` and ``_batch.py``): a task
instance recording XCom pushes and a dict-backed ``task_state_store``.  Everything between the
operator and the service is real.  This module covers the operator's definition and its submission;
waiting and deferral live in ``test_mps_batch_waiting.py``, retries and the ledger in
``test_mps_batch_ledger.py``, and DAG runs through ``dag.test()`` in ``test_mps_batch_dag_runs.py``.
"""

from __future__ import annotations

import time

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_mps.exceptions import MpsError, MpsInvalidParameterError
from airflow_provider_mps.operators._mps_batch import MAX_CONSECUTIVE_FAILURES
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS
from tests.operators._batch import CREATE, created_by_prompt, creates, make_context, make_operator
from tests.operators._task_logs import request_ids_from_logs
from tests.operators.conftest import kept_for_a_retry

pytestmark = pytest.mark.usefixtures("fresh_rate_limiters")


# -- definition ------------------------------------------------------------------------------


def test_template_fields_and_defaults_follow_airflow_conventions():
    operator = make_operator(requests=["a cat"])

    assert MpsCreateAigcImageBatchOperator.template_fields == ("requests", "shared_fields", "region")
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

    assert MpsCreateAigcImageBatchOperator.__bases__ == (ResumableJobMixin, BaseOperator)


def test_durable_left_at_its_default_never_warns():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_operator(requests=["a cat"])


def test_constructor_is_keyword_only():
    with pytest.raises((TypeError, AirflowException)):
        MpsCreateAigcImageBatchOperator(["a cat"], task_id="batch")  # type: ignore[misc]


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
