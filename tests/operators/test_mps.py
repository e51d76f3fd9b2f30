"""
MpsCreateAigcImageTaskOperator driven directly (``execute`` with a small context) against the emulator.

The context holds only what Airflow's task runner would hand the operator that these tests read:
a task instance recording XCom pushes and a dict-backed ``task_state_store``.  Everything between
the operator and the service (hook, SDK, HTTP, signatures) is the real thing.  Full DAG runs
through ``dag.test()`` live in ``test_mps_dag_runs.py``.
"""

from __future__ import annotations

import datetime
import time
import warnings
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, TaskDeferred

from airflow_provider_mps.emulator.models import FAIL_MARKER, FAIL_MARKER_MESSAGE
from airflow_provider_mps.exceptions import (
    MpsError,
    MpsInvalidParameterError,
    MpsTaskFailedError,
    MpsTaskTimeoutError,
    MpsTransientError,
)
from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.links.mps import MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.version_compat import AIRFLOW_V_3_3_PLUS

STATE_KEY = "mps_aigc_image_task"


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


#: Tests of re-attaching through the task_state_store.
needs_task_state_store = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS, reason="task_state_store (re-attach on retry) arrived in Airflow 3.3"
)
#: Tests of what a retry does where there is no task_state_store.
before_task_state_store = pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS, reason="Airflow 3.3+ re-attaches on retry through the task_state_store"
)


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


def create_tasks(prompt: str) -> str:
    return MpsHook().create_aigc_image_task(prompt=prompt)


# -- definition ------------------------------------------------------------------------------


def test_template_fields_are_the_request_fields_and_region_and_all_exist_on_the_operator():
    operator = make_operator(prompt="a cat")

    assert tuple(operator.template_fields) == (
        "prompt",
        "negative_prompt",
        "model_name",
        "model_version",
        "scene_type",
        "enhance_prompt",
        "image_infos",
        "output_image_count",
        "extra_parameters",
        "additional_parameters",
        "store_cos_param",
        "operator",
        "region",
    )
    assert [field for field in operator.template_fields if not hasattr(operator, field)] == []
    assert operator.template_fields_renderers == {
        "image_infos": "json",
        "extra_parameters": "json",
        "additional_parameters": "json",
        "store_cos_param": "json",
    }


def test_operator_defaults_follow_airflow_conventions():
    operator = make_operator(prompt="a cat")

    assert (operator.mps_conn_id, operator.wait_for_completion, operator.deferrable, operator.timeout) == (
        MpsHook.default_conn_name,
        False,
        False,
        3600.0,
    )
    # durable: on by default on every line (the task_state_store on 3.3+, Airflow Variables before).
    assert (operator.durable, operator.resubmit_on_retry) == (True, False)
    assert [type(link) for link in operator.operator_extra_links] == [MpsAigcImageLink, MpsConsoleTaskLink]


def test_operator_is_a_resumable_job_of_the_mixin_airflow_provides():
    from airflow.providers.common.compat.sdk import BaseOperator, ResumableJobMixin

    assert MpsCreateAigcImageTaskOperator.__bases__ == (ResumableJobMixin, BaseOperator)
    assert MpsCreateAigcImageTaskOperator.external_id_key == STATE_KEY


def test_durable_left_at_its_default_never_warns():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_operator(prompt="a cat")


def test_durable_given_is_kept_without_a_warning_on_every_line():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        operators = [
            make_operator(task_id=f"t{flag}", prompt="a cat", durable=flag) for flag in (True, False)
        ]

    assert [operator.durable for operator in operators] == [True, False]


def test_constructor_is_keyword_only():
    # Airflow 3 raises TypeError, Airflow 2 AirflowException, both with this message.
    with pytest.raises(
        (TypeError, AirflowException), match="Use keyword arguments when initializing operators"
    ):
        MpsCreateAigcImageTaskOperator("a cat", task_id="create")  # type: ignore[misc]


def test_hook_is_built_lazily_with_the_rendered_connection_and_region():
    operator = make_operator(prompt="a cat", mps_conn_id="my_mps", region="ap-shanghai")

    assert "hook" not in vars(operator)
    assert (operator.hook.mps_conn_id, operator.hook.region) == ("my_mps", "ap-shanghai")


def test_literal_invalid_value_fails_when_the_dag_is_parsed():
    with pytest.raises(MpsInvalidParameterError) as raised:
        make_operator(prompt="a cat", extra_parameters={"LogoAdd": 2})

    assert str(raised.value) == (
        "Invalid extra_parameters.LogoAdd 2: must be 0 (no watermark) or 1 (add the watermark)."
    )


def test_strict_validation_refuses_an_undocumented_literal_when_the_dag_is_parsed():
    with pytest.raises(MpsInvalidParameterError) as raised:
        make_operator(prompt="a cat", extra_parameters={"OutputFormat": "gif"}, strict_validation=True)

    assert str(raised.value) == "Invalid extra_parameters.OutputFormat 'gif': must be one of jpeg, png."


def test_an_undocumented_literal_passes_the_parse_and_is_sent_as_written():
    operator = make_operator(prompt="a cat", model_name="GEM", extra_parameters={"Resolution": "8K"})

    assert operator.extra_parameters == {"Resolution": "8K"}
    assert operator.strict_validation is False


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"poll_interval": 0}, "Invalid poll_interval 0: must be a number of seconds greater than 0."),
        ({"poll_interval": "10"}, "Invalid poll_interval '10': must be a number of seconds greater than 0."),
        ({"timeout": -1}, "Invalid timeout -1: must be a number of seconds greater than 0."),
    ],
)
def test_waiting_knobs_are_checked_when_the_dag_is_parsed(knobs, message):
    with pytest.raises(MpsInvalidParameterError) as raised:
        make_operator(prompt="a cat", **knobs)

    assert str(raised.value) == message


def test_operator_without_prompt_or_image_fails_when_the_dag_is_parsed():
    with pytest.raises(MpsInvalidParameterError) as raised:
        make_operator(model_name="GEM")

    assert str(raised.value) == (
        "Invalid prompt None: a prompt or at least one reference image (image_infos) is required."
    )


def test_templated_and_xcomarg_values_are_left_for_run_time():
    from airflow.providers.common.compat.sdk import DAG, task

    with DAG("parse_time_validation", schedule=None):

        @task
        def urls() -> list[str]:
            return ["ftp://not-checked-yet"]

        operator = make_operator(prompt="{{ params.prompt }}", image_infos=urls())

    assert (operator.prompt, operator.upstream_task_ids) == ("{{ params.prompt }}", {"urls"})


# -- create ----------------------------------------------------------------------------------


def test_execute_sends_exactly_the_rendered_request_and_returns_the_task_id(mps_conn):
    operator = make_operator(
        prompt="A watercolor of a lighthouse at dawn",
        model_name="GEM",
        model_version="3.0",
        negative_prompt="people",
        enhance_prompt=True,
        image_infos=[
            "https://example.com/ref.png",
            {"ImageUrl": "https://example.com/b.webp", "ReferenceType": "style"},
        ],
        output_image_count=2,
        extra_parameters={"aspect_ratio": "16:9", "Resolution": "2K", "LogoAdd": 0, "OutputFormat": "jpeg"},
        additional_parameters={"seed": 7},
        store_cos_param={
            "CosBucketName": "images-125",
            "CosBucketRegion": "ap-guangzhou",
            "CosBucketPath": "aigc/",
        },
        operator="airflow",
    )
    context = make_context()

    task_id = operator.execute(context)

    [created] = mps_conn.tasks()
    request = dict(created["Request"])
    assert json_object(request.pop("AdditionalParameters")) == {"seed": 7}
    assert request == {
        "Prompt": "A watercolor of a lighthouse at dawn",
        "ModelName": "GEM",
        "ModelVersion": "3.0",
        "NegativePrompt": "people",
        "EnhancePrompt": True,
        "ImageInfos": [
            {"ImageUrl": "https://example.com/ref.png"},
            {"ImageUrl": "https://example.com/b.webp", "ReferenceType": "style"},
        ],
        "OutputImageCount": 2,
        "ExtraParameters": {"AspectRatio": "16:9", "Resolution": "2K", "LogoAdd": 0, "OutputFormat": "jpeg"},
        "StoreCosParam": {
            "CosBucketName": "images-125",
            "CosBucketRegion": "ap-guangzhou",
            "CosBucketPath": "aigc/",
        },
        "Operator": "airflow",
    }
    assert task_id == created["TaskId"]
    [create_call] = mps_conn.requests()
    assert context["ti"].xcoms == {"request_id": create_call["RequestId"]}


def json_object(text: str) -> Any:
    import json

    return json.loads(text)


def test_execute_logs_the_task_id_and_request_id(mps_conn, task_logs):
    task_id = make_operator(prompt="a cat").execute(make_context())

    [create_call] = mps_conn.requests()
    created = f"info: Created MPS AIGC image task {task_id} (RequestId {create_call['RequestId']})."
    assert created in task_logs()


def test_invalid_rendered_value_fails_without_retry_before_any_call(mps_conn):
    operator = make_operator(prompt="{{ params.prompt }}")
    operator.prompt = {"subject": "cat"}  # what a native template could render

    with pytest.raises(MpsInvalidParameterError) as raised:
        operator.execute(make_context())

    assert str(raised.value) == "Invalid prompt {'subject': 'cat'}: must be a string, got dict."
    assert isinstance(raised.value, AirflowFailException)
    assert mps_conn.requests() == []


def test_transient_service_error_with_resubmit_on_retry_fails_the_try_so_airflow_retries(mps_conn):
    mps_conn.configure(error_burst={"CreateAigcImageTask": 1}, error_code="InternalError")
    context = make_context()

    with pytest.raises(MpsTransientError) as raised:
        make_operator(prompt="a cat", resubmit_on_retry=True).execute(context)

    [create_call] = mps_conn.requests()
    assert (raised.value.code, raised.value.request_id) == ("InternalError", create_call["RequestId"])
    assert not isinstance(raised.value, AirflowFailException)
    assert (mps_conn.tasks(), context["ti"].xcoms) == ([], {})


def test_request_the_service_refuses_fails_without_retry_with_its_code_and_request_id(mps_conn):
    operator = make_operator(prompt="a cat", model_name="Seedream")

    with pytest.raises(AirflowFailException) as raised:
        operator.execute(make_context())

    [create_call] = mps_conn.requests()
    assert create_call["ErrorCode"] == "InvalidParameterValue.ModelName"
    assert str(raised.value) == (
        "CreateAigcImageTask failed with InvalidParameterValue.ModelName: "
        f"{raised.value.__cause__.message} (RequestId: {create_call['RequestId']}) "
        "The service refused the request's parameters; the same request cannot succeed on a retry, "
        "so the task fails without retrying."
    )
    assert mps_conn.tasks() == []


def test_an_undocumented_value_is_sent_with_a_warning_and_the_service_decides(mps_conn, caplog):
    operator = make_operator(prompt="a cat", model_name="GEM", extra_parameters={"Resolution": "8K"})

    with pytest.raises(AirflowFailException) as raised:
        operator.execute(make_context())

    [create_call] = mps_conn.requests()
    assert create_call["ErrorCode"] == "InvalidParameterValue"
    assert str(raised.value).startswith("CreateAigcImageTask failed with InvalidParameterValue: ")
    assert [r.getMessage() for r in caplog.records if r.name == "airflow_provider_mps.validation"] == [
        "extra_parameters.Resolution '8K' is not among the values documented today (must be one of 720P, "
        "1080P, 2K, 4K for GEM); sending it unchanged and letting the service decide. Pass "
        "strict_validation=True to refuse such values before sending."
    ]


def test_strict_validation_refuses_an_undocumented_rendered_value_before_any_call(mps_conn):
    operator = make_operator(
        prompt="a cat", model_name="GEM", extra_parameters="{{ params.extra }}", strict_validation=True
    )

    operator.extra_parameters = {"Resolution": "8K"}  # as rendered from the template

    with pytest.raises(MpsInvalidParameterError) as raised:
        operator.execute(make_context())

    assert str(raised.value) == (
        "Invalid extra_parameters.Resolution '8K': must be one of 720P, 1080P, 2K, 4K for GEM."
    )
    assert mps_conn.requests() == []


# -- waiting ---------------------------------------------------------------------------------


def test_wait_for_completion_pushes_the_image_urls_and_returns_the_task_id(mps_conn):
    context = make_context()

    task_id = make_operator(prompt="a cat", wait_for_completion=True).execute(context)

    [created] = mps_conn.tasks()
    assert created["Status"] == "DONE"
    assert task_id == created["TaskId"]
    assert context["ti"].xcoms == {
        "request_id": mps_conn.requests()[0]["RequestId"],
        "image_urls": [f"{mps_conn.endpoint}/images/{task_id}/0.png"],
    }
    # Kept after success: Airflow's [state_store] clear_on_success decides when it goes.
    assert context["task_state_store"].values == kept_for_a_retry(
        {STATE_KEY: stored_job({"TaskId": task_id, "RequestId": mps_conn.requests()[0]["RequestId"]})}
    )


def test_wait_for_completion_fails_with_the_service_message_task_id_and_request_id(mps_conn):
    context = make_context()

    with pytest.raises(MpsTaskFailedError) as raised:
        make_operator(prompt=f"a cat {FAIL_MARKER}", wait_for_completion=True).execute(context)

    [created] = mps_conn.tasks()
    last_describe = mps_conn.requests()[-1]
    assert (last_describe["Action"], created["Status"]) == ("DescribeAigcImageTask", "FAIL")
    assert str(raised.value) == (
        f"MPS task {created['TaskId']} failed: {FAIL_MARKER_MESSAGE} "
        f"(RequestId: {last_describe['RequestId']})"
    )
    assert "image_urls" not in context["ti"].xcoms


def test_wait_for_completion_gives_up_after_the_timeout_and_keeps_the_task_for_the_retry(mps_conn):
    mps_conn.configure(run_seconds=60)
    context = make_context()

    with pytest.raises(MpsTaskTimeoutError, match="did not finish before .*; its last status was"):
        make_operator(prompt="a cat", wait_for_completion=True, timeout=0.3).execute(context)

    [created] = mps_conn.tasks()
    assert context["task_state_store"].values == kept_for_a_retry(
        {
            STATE_KEY: stored_job(
                {"TaskId": created["TaskId"], "RequestId": mps_conn.requests()[0]["RequestId"]}
            )
        }
    )


def test_deferrable_operator_creates_then_defers_to_the_trigger(mps_conn):
    context = make_context()
    operator = make_operator(
        prompt="a cat",
        wait_for_completion=True,
        deferrable=True,
        poll_interval=2,
        timeout=600,
        region="ap-beijing",
    )
    before = time.time()

    with pytest.raises(TaskDeferred) as raised:
        operator.execute(context)

    after = time.time()
    [created] = mps_conn.tasks()
    deferred = raised.value
    classpath, kwargs = deferred.trigger.serialize()
    end_time = kwargs.pop("end_time")
    assert (classpath, kwargs) == (
        "airflow_provider_mps.triggers.mps.MpsAigcImageTaskTrigger",
        {
            "mps_task_id": created["TaskId"],
            "mps_conn_id": "tencentcloud_mps_default",
            "poll_interval": 2.0,
            "region": "ap-beijing",
            "rate_limit": 20.0,
        },
    )
    assert before + 600 <= end_time <= after + 600
    assert (deferred.method_name, deferred.kwargs) == ("execute_complete", {"mps_task_id": created["TaskId"]})
    # Airflow's own deferral deadline backs up the trigger's: the timeout plus a minute.
    assert deferred.timeout == datetime.timedelta(seconds=660)
    assert context["task_state_store"].values == kept_for_a_retry(
        {
            STATE_KEY: stored_job(
                {"TaskId": created["TaskId"], "RequestId": mps_conn.requests()[0]["RequestId"]}
            )
        }
    )


def test_deferrable_operator_without_wait_for_completion_does_not_defer(mps_conn):
    task_id = make_operator(prompt="a cat", deferrable=True).execute(make_context())

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]


def success_event(task_id: str, image_urls: list[str]) -> dict[str, Any]:
    result = {"TaskId": task_id, "Status": "DONE", "ImageUrls": image_urls, "Message": "", "RequestId": "r-1"}
    return {
        "status": "success",
        "mps_task_id": task_id,
        "result": result,
        "message": f"MPS task {task_id} is DONE.",
    }


def test_execute_complete_pushes_the_image_urls_and_returns_the_task_id():
    store = DictTaskStateStore({STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})
    context = make_context(store)
    operator = make_operator(prompt="a cat", wait_for_completion=True, deferrable=True)

    task_id = operator.execute_complete(context, success_event("t-1", ["https://x/0.png"]), mps_task_id="t-1")

    assert (task_id, context["ti"].xcoms) == ("t-1", {"image_urls": ["https://x/0.png"]})
    # Success leaves the stored TaskId to Airflow ([state_store] clear_on_success).
    assert store.values == {STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}}


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        pytest.param(
            {
                "status": "failed",
                "mps_task_id": "t-1",
                "result": {"RequestId": "r-9"},
                "message": "NSFW prompt.",
            },
            MpsTaskFailedError,
            "MPS task t-1 failed: NSFW prompt. (RequestId: r-9)",
            id="failed",
        ),
        pytest.param(
            {"status": "timeout", "mps_task_id": "t-1", "result": None, "message": "Too slow."},
            MpsTaskTimeoutError,
            "Too slow.",
            id="timeout",
        ),
        pytest.param(
            {"status": "error", "mps_task_id": "t-1", "result": None, "message": "AuthFailure."},
            MpsError,
            "AuthFailure.",
            id="error",
        ),
        pytest.param(
            success_event("t-2", ["https://x/0.png"]),
            MpsError,
            "The trigger event is for MPS task 't-2', but the task waited for 't-1'.",
            id="another-task",
        ),
        pytest.param(
            None,
            MpsError,
            "The trigger event must be a dict from MpsAigcImageTaskTrigger, got None.",
            id="none",
        ),
    ],
)
def test_execute_complete_never_assumes_success(event, error, message):
    store = DictTaskStateStore({STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})
    context = make_context(store)

    with pytest.raises(error) as raised:
        make_operator(prompt="a cat", wait_for_completion=True, deferrable=True).execute_complete(
            context, event, mps_task_id="t-1"
        )

    assert str(raised.value) == message
    assert (context["ti"].xcoms, store.values) == ({}, {STATE_KEY: {"TaskId": "t-1", "RequestId": "r-0"}})


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


def test_on_kill_says_the_service_task_keeps_running(mps_conn, task_logs):
    operator = make_operator(prompt="a cat")
    task_id = operator.execute(make_context())

    operator.on_kill()

    assert task_logs()[-1] == (
        f"warning: MPS has no API to cancel AIGC image task {task_id}; it keeps running (and is billed) "
        "on the service. Only the Airflow task was stopped."
    )
