"""The API 3.0 envelope, the actions and the parameter checks, through the official SDK."""

from __future__ import annotations

from typing import Any

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.emulator.sdk import create, describe, failed, sync_client
from tests.emulator.tc3 import signed_post


def call_error(client, action: str, params: dict) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json(action, params)
    return info.value.code, info.value.message


def post_json(emulator: EmulatorHandle, action: str, payload: bytes) -> dict[str, Any]:
    """POST ``payload`` to ``action``, signed with the emulator's keys; the answer must be HTTP 200 JSON."""
    response = signed_post(
        emulator.endpoint, action, payload, secret_id=emulator.secret_id, secret_key=emulator.secret_key
    )
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
    return response.json()


def test_success_envelope_is_http_200_json_with_request_id(mps_emulator):
    body = post_json(mps_emulator, "DescribeTranscodeTemplates", b'{"Limit": 1}')

    assert body == {
        "Response": {"TotalCount": 0, "TranscodeTemplateSet": [], "RequestId": body["Response"]["RequestId"]}
    }
    [logged] = mps_emulator.requests()
    assert logged == {
        "Action": "DescribeTranscodeTemplates",
        "SecretId": mps_emulator.secret_id,
        "Time": logged["Time"],
        "ErrorCode": None,
        "RequestId": body["Response"]["RequestId"],
        "Fault": None,
    }


def test_error_envelope_is_http_200_json_with_code_message_and_request_id(mps_emulator):
    body = post_json(mps_emulator, "DescribeAigcImageTask", b'{"TaskId": "1-AigcImage-nope"}')

    assert body == {
        "Response": {
            "Error": {
                "Code": "ResourceNotFound.TaskNotFound",
                "Message": "The task `1-AigcImage-nope` does not exist.",
            },
            "RequestId": body["Response"]["RequestId"],
        }
    }
    assert [r["ErrorCode"] for r in mps_emulator.requests()] == ["ResourceNotFound.TaskNotFound"]


def test_test_connection_action_answers_an_empty_template_list(mps_emulator):
    result = sync_client(mps_emulator).call_json("DescribeTranscodeTemplates", {"Limit": 1})

    assert result == {
        "Response": {
            "TotalCount": 0,
            "TranscodeTemplateSet": [],
            "RequestId": result["Response"]["RequestId"],
        }
    }


def test_unknown_action_is_invalid_action(mps_emulator):
    assert call_error(sync_client(mps_emulator), "DescribeAigcVideoTask", {"TaskId": "x"}) == (
        "InvalidAction",
        "The action `DescribeAigcVideoTask` is not supported by the service mps.",
    )


def test_task_of_another_account_is_not_found():
    with ThreadedEmulatorServer(extra_credentials={"AKIDother": "other-key"}, wait_seconds=0.2) as server:
        handle = EmulatorHandle.from_server(server)
        task_id = create(sync_client(handle), Prompt="mine")
        other = sync_client(handle, secret_id="AKIDother", secret_key="other-key")

        assert describe(sync_client(handle), task_id)["Status"] == "WAIT"
        assert call_error(other, "DescribeAigcImageTask", {"TaskId": task_id}) == (
            "ResourceNotFound.TaskNotFound",
            f"The task `{task_id}` does not exist.",
        )


def test_forced_status_is_reported_by_describe(mps_emulator):
    client = sync_client(mps_emulator)
    task_id = create(client, Prompt="a cat")

    forced = mps_emulator.force_status(task_id, "FAIL", "Content moderation rejected the prompt.")

    assert forced["Status"] == "FAIL"
    assert describe(client, task_id) == failed("Content moderation rejected the prompt.")


def test_fail_rate_makes_tasks_end_in_fail(mps_emulator):
    mps_emulator.configure(fail_rate=1.0, wait_seconds=0, run_seconds=0)
    client = sync_client(mps_emulator)

    task_id = create(client, Prompt="a cat")

    assert describe(client, task_id) == failed(
        "Image generation failed: the task was picked by the emulator's fail_rate knob."
    )


LONG_PROMPT = "x" * 1001


def invalid_value(parameter: str, reason: str, code: str = "InvalidParameterValue") -> tuple[str, str]:
    """The ``(code, message)`` of the SDK error for a refused value of ``parameter``."""
    return code, f"The value of parameter `{parameter}` is invalid: {reason}"


def missing(parameter: str) -> tuple[str, str]:
    """The ``(code, message)`` of the SDK error for a missing required ``parameter``."""
    return "MissingParameter", f"The request is missing a required parameter `{parameter}`."


def unknown(parameter: str) -> tuple[str, str]:
    """The ``(code, message)`` of the SDK error for a ``parameter`` the action does not know."""
    return "UnknownParameter", f"The parameter `{parameter}` is not recognized."


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, invalid_value("Prompt", "it is required (non-empty) when no ImageInfos are given.")),
        ({"Prompt": ""}, invalid_value("Prompt", "it is required (non-empty) when no ImageInfos are given.")),
        (
            {"Prompt": LONG_PROMPT},
            invalid_value("Prompt", "it is 1001 characters long, over the limit of 1000."),
        ),
        ({"Prompt": 42}, invalid_value("Prompt", "it must be a string, not 42.")),
        (
            {"Prompt": "a", "EnhancePrompt": "yes"},
            invalid_value("EnhancePrompt", 'it must be a boolean, not "yes".'),
        ),
        (
            {"Prompt": "a", "OutputImageCount": True},
            invalid_value("OutputImageCount", "it must be an integer, not true."),
        ),
        (
            {"Prompt": "a", "OutputImageCount": 5},
            invalid_value("OutputImageCount", "5 is outside the range 1 to 4."),
        ),
        (
            {"Prompt": "a", "ModelName": "Midjourney"},
            invalid_value(
                "ModelName",
                "`Midjourney` is not one of Hunyuan, GEM, Jimeng, Qwen, Vidu, Kling, wand-vega-image.",
                code="InvalidParameterValue.ModelName",
            ),
        ),
        (
            {"Prompt": "a", "ModelName": "GEM", "ModelVersion": "9.9"},
            invalid_value(
                "ModelVersion",
                "`9.9` is not a version of GEM (2.5, 3.0).",
                code="InvalidParameterValue.ModelVersion",
            ),
        ),
        (
            {
                "Prompt": "a",
                "ModelName": "GEM",
                "ImageInfos": [{"ImageUrl": f"https://e.x/{i}.png"} for i in range(4)],
            },
            invalid_value("ImageInfos", "GEM (default version) accepts at most 3 reference images, got 4."),
        ),
        (
            {
                "ModelName": "Qwen",
                "ImageInfos": [{"ImageUrl": "https://e.x/1.png"}, {"ImageUrl": "https://e.x/2.png"}],
            },
            invalid_value("ImageInfos", "Qwen (default version) accepts at most 1 reference image, got 2."),
        ),
        ({"ImageInfos": [{"ReferenceType": "style"}]}, missing("ImageInfos.0.ImageUrl")),
        (
            {"ImageInfos": [{"ImageUrl": "ftp://e.x/1.png"}]},
            invalid_value("ImageInfos.0.ImageUrl", "it must be an http or https URL."),
        ),
        (
            {"Prompt": "a", "ImageInfos": "https://e.x/1.png"},
            invalid_value("ImageInfos", 'it must be an array, not "https://e.x/1.png".'),
        ),
        (
            {"Prompt": "a", "AdditionalParameters": "{size: 1024}"},
            invalid_value("AdditionalParameters", "it must be a JSON object serialised as a string."),
        ),
        (
            {"Prompt": "a", "AdditionalParameters": {"size": "1024x1024"}},
            invalid_value("AdditionalParameters", 'it must be a string, not {"size": "1024x1024"}.'),
        ),
        (
            {"Prompt": "a", "StoreCosParam": {"CosBucketRegion": "ap-guangzhou"}},
            missing("StoreCosParam.CosBucketName"),
        ),
        (
            {"Prompt": "a", "StoreCosParam": {"CosBucketName": "b-125"}},
            missing("StoreCosParam.CosBucketRegion"),
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"AspectRatio": "5:4"}},
            invalid_value(
                "ExtraParameters.AspectRatio",
                "`5:4` is not one of 16:9, 9:16, 1:1, 4:3, 3:4, 3:2, 2:3, 21:9.",
            ),
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"OutputFormat": "webp"}},
            invalid_value("ExtraParameters.OutputFormat", "`webp` is not one of jpeg, png."),
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"LogoAdd": 2}},
            invalid_value("ExtraParameters.LogoAdd", "2 is not 0 or 1."),
        ),
        ({"Prompt": "a", "ExtraParameters": {"Quality": "high"}}, unknown("ExtraParameters.Quality")),
        ({"Prompt": "a", "Seed": 7}, unknown("Seed")),
    ],
    ids=[
        "no-prompt-no-images",
        "empty-prompt",
        "prompt-too-long",
        "prompt-not-string",
        "enhance-not-bool",
        "count-bool",
        "count-too-high",
        "unknown-model",
        "unknown-version",
        "too-many-images-gem",
        "too-many-images-qwen",
        "image-without-url",
        "image-url-not-http",
        "image-infos-not-list",
        "additional-not-json",
        "additional-not-string",
        "cos-without-bucket",
        "cos-without-region",
        "bad-aspect-ratio",
        "bad-output-format",
        "bad-logo-add",
        "unknown-extra-field",
        "unknown-field",
    ],
)
def test_create_parameter_checks(mps_emulator, params, expected):
    assert call_error(sync_client(mps_emulator), "CreateAigcImageTask", params) == expected
    assert mps_emulator.tasks() == []


def test_create_accepts_every_documented_field(mps_emulator):
    params = {
        "ModelName": "Hunyuan",
        "ModelVersion": "3.0",
        "SceneType": "3d_panorama",
        "Prompt": "a lighthouse at dusk",
        "NegativePrompt": "people",
        "EnhancePrompt": True,
        "ImageInfos": [{"ImageUrl": "https://example.com/ref.png", "ReferenceType": "style"}],
        "OutputImageCount": 2,
        "ExtraParameters": {"AspectRatio": "16:9", "Resolution": "2K", "LogoAdd": 1, "OutputFormat": "jpeg"},
        "AdditionalParameters": '{"size": "2048x1152"}',
        "StoreCosParam": {
            "CosBucketName": "bucket-125",
            "CosBucketRegion": "ap-guangzhou",
            "CosBucketPath": "out",
        },
        "Operator": "airflow",
    }

    task_id = create(sync_client(mps_emulator), **params)

    assert [(t["TaskId"], t["Request"]) for t in mps_emulator.tasks()] == [(task_id, params)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, missing("TaskId")),
        ({"TaskId": 12}, invalid_value("TaskId", "it must be a string, not 12.")),
        ({"TaskId": "x", "Verbose": True}, unknown("Verbose")),
    ],
    ids=[
        "missing",
        "not-string",
        "unknown-field",
    ],
)
def test_describe_parameter_checks(mps_emulator, params, expected):
    assert call_error(sync_client(mps_emulator), "DescribeAigcImageTask", params) == expected
