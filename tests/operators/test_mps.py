"""
MpsCreateAigcImageTaskOperator driven directly (``execute`` with a small context) against the emulator.

The context holds only what Airflow's task runner would hand the operator that these tests read:
a task instance recording XCom pushes and a dict-backed ``task_state_store`` (both in
``conftest.py``).  Everything between the operator and the service (hook, SDK, HTTP, signatures) is
the real thing.  This module covers the operator's definition and its create; waiting and deferral
live in ``test_mps_waiting.py``, re-attaching on a retry in ``test_mps_reattach.py``, and full DAG
runs through ``dag.test()`` in ``test_mps_dag_runs.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_mps.exceptions import MpsInvalidParameterError, MpsTransientError
from airflow_provider_mps.hooks.mps import MpsHook
from airflow_provider_mps.links.mps import MpsAigcImageLink, MpsConsoleTaskLink
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from tests.operators.conftest import STATE_KEY, make_context, make_operator


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


# -- kill ------------------------------------------------------------------------------------


def test_on_kill_says_the_service_task_keeps_running(mps_conn, task_logs):
    operator = make_operator(prompt="a cat")
    task_id = operator.execute(make_context())

    operator.on_kill()

    assert task_logs()[-1] == (
        f"warning: MPS has no API to cancel AIGC image task {task_id}; it keeps running (and is billed) "
        "on the service. Only the Airflow task was stopped."
    )
