"""The API 3.0 envelope, the actions and the parameter checks, through the official SDK."""

from __future__ import annotations

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.emulator.sdk import create, describe, sync_client
from tests.emulator.tc3 import signed_post


def call_error(client, action: str, params: dict) -> tuple[str, str]:
    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json(action, params)
    return info.value.code, info.value.message


def test_success_envelope_is_http_200_json_with_request_id(mps_emulator):
    response = signed_post(
        mps_emulator.endpoint,
        "DescribeTranscodeTemplates",
        b'{"Limit": 1}',
        secret_id=mps_emulator.secret_id,
        secret_key=mps_emulator.secret_key,
    )

    body = response.json()
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
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
    response = signed_post(
        mps_emulator.endpoint,
        "DescribeAigcImageTask",
        b'{"TaskId": "1-AigcImage-nope"}',
        secret_id=mps_emulator.secret_id,
        secret_key=mps_emulator.secret_key,
    )

    body = response.json()
    assert (response.status_code, response.headers["content-type"]) == (200, "application/json")
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
    assert describe(client, task_id) == {
        "Status": "FAIL",
        "ImageUrls": [],
        "Message": "Content moderation rejected the prompt.",
    }


def test_fail_rate_makes_tasks_end_in_fail(mps_emulator):
    mps_emulator.configure(fail_rate=1.0, wait_seconds=0, run_seconds=0)
    client = sync_client(mps_emulator)

    task_id = create(client, Prompt="a cat")

    assert describe(client, task_id) == {
        "Status": "FAIL",
        "ImageUrls": [],
        "Message": "Image generation failed: the task was picked by the emulator's fail_rate knob.",
    }


LONG_PROMPT = "x" * 1001


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        (
            {},
            "InvalidParameterValue",
            "The value of parameter `Prompt` is invalid: it is required (non-empty) "
            "when no ImageInfos are given.",
        ),
        (
            {"Prompt": ""},
            "InvalidParameterValue",
            "The value of parameter `Prompt` is invalid: it is required "
            "(non-empty) when no ImageInfos are given.",
        ),
        (
            {"Prompt": LONG_PROMPT},
            "InvalidParameterValue",
            "The value of parameter `Prompt` is invalid: it is 1001 characters long, over the limit of 1000.",
        ),
        (
            {"Prompt": 42},
            "InvalidParameterValue",
            "The value of parameter `Prompt` is invalid: it must be a string, not 42.",
        ),
        (
            {"Prompt": "a", "EnhancePrompt": "yes"},
            "InvalidParameterValue",
            'The value of parameter `EnhancePrompt` is invalid: it must be a boolean, not "yes".',
        ),
        (
            {"Prompt": "a", "OutputImageCount": True},
            "InvalidParameterValue",
            "The value of parameter `OutputImageCount` is invalid: it must be an integer, not true.",
        ),
        (
            {"Prompt": "a", "OutputImageCount": 5},
            "InvalidParameterValue",
            "The value of parameter `OutputImageCount` is invalid: 5 is outside the range 1 to 4.",
        ),
        (
            {"Prompt": "a", "ModelName": "Midjourney"},
            "InvalidParameterValue.ModelName",
            "The value of parameter "
            "`ModelName` is invalid: `Midjourney` is not one of Hunyuan, GEM, Jimeng, Qwen, Vidu, Kling, "
            "wand-vega-image.",
        ),
        (
            {"Prompt": "a", "ModelName": "GEM", "ModelVersion": "9.9"},
            "InvalidParameterValue.ModelVersion",
            "The value of parameter `ModelVersion` is invalid: `9.9` is not a version of GEM (2.5, 3.0).",
        ),
        (
            {
                "Prompt": "a",
                "ModelName": "GEM",
                "ImageInfos": [{"ImageUrl": f"https://e.x/{i}.png"} for i in range(4)],
            },
            "InvalidParameterValue",
            "The value of parameter `ImageInfos` is invalid: GEM (default version) accepts "
            "at most 3 reference images, got 4.",
        ),
        (
            {
                "ModelName": "Qwen",
                "ImageInfos": [{"ImageUrl": "https://e.x/1.png"}, {"ImageUrl": "https://e.x/2.png"}],
            },
            "InvalidParameterValue",
            "The value of parameter `ImageInfos` is invalid: Qwen (default version) accepts "
            "at most 1 reference image, got 2.",
        ),
        (
            {"ImageInfos": [{"ReferenceType": "style"}]},
            "MissingParameter",
            "The request is missing a required parameter `ImageInfos.0.ImageUrl`.",
        ),
        (
            {"ImageInfos": [{"ImageUrl": "ftp://e.x/1.png"}]},
            "InvalidParameterValue",
            "The value of parameter `ImageInfos.0.ImageUrl` is invalid: it must be an http or https URL.",
        ),
        (
            {"Prompt": "a", "ImageInfos": "https://e.x/1.png"},
            "InvalidParameterValue",
            'The value of parameter `ImageInfos` is invalid: it must be an array, not "https://e.x/1.png".',
        ),
        (
            {"Prompt": "a", "AdditionalParameters": "{size: 1024}"},
            "InvalidParameterValue",
            "The value of "
            "parameter `AdditionalParameters` is invalid: it must be a JSON object serialised as a string.",
        ),
        (
            {"Prompt": "a", "AdditionalParameters": {"size": "1024x1024"}},
            "InvalidParameterValue",
            "The value of "
            'parameter `AdditionalParameters` is invalid: it must be a string, not {"size": "1024x1024"}.',
        ),
        (
            {"Prompt": "a", "StoreCosParam": {"CosBucketRegion": "ap-guangzhou"}},
            "MissingParameter",
            "The request is missing a required parameter `StoreCosParam.CosBucketName`.",
        ),
        (
            {"Prompt": "a", "StoreCosParam": {"CosBucketName": "b-125"}},
            "MissingParameter",
            "The request is missing a required parameter `StoreCosParam.CosBucketRegion`.",
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"AspectRatio": "5:4"}},
            "InvalidParameterValue",
            "The value of parameter `ExtraParameters.AspectRatio` is invalid: "
            "`5:4` is not one of 16:9, 9:16, 1:1, 4:3, 3:4, 3:2, 2:3, 21:9.",
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"OutputFormat": "webp"}},
            "InvalidParameterValue",
            "The value of "
            "parameter `ExtraParameters.OutputFormat` is invalid: `webp` is not one of jpeg, png.",
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"LogoAdd": 2}},
            "InvalidParameterValue",
            "The value of parameter `ExtraParameters.LogoAdd` is invalid: 2 is not 0 or 1.",
        ),
        (
            {"Prompt": "a", "ExtraParameters": {"Quality": "high"}},
            "UnknownParameter",
            "The parameter `ExtraParameters.Quality` is not recognized.",
        ),
        ({"Prompt": "a", "Seed": 7}, "UnknownParameter", "The parameter `Seed` is not recognized."),
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
def test_create_parameter_checks(mps_emulator, params, code, message):
    assert call_error(sync_client(mps_emulator), "CreateAigcImageTask", params) == (code, message)
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
    ("params", "code", "message"),
    [
        ({}, "MissingParameter", "The request is missing a required parameter `TaskId`."),
        (
            {"TaskId": 12},
            "InvalidParameterValue",
            "The value of parameter `TaskId` is invalid: it must be a string, not 12.",
        ),
        ({"TaskId": "x", "Verbose": True}, "UnknownParameter", "The parameter `Verbose` is not recognized."),
    ],
    ids=["missing", "not-string", "unknown-field"],
)
def test_describe_parameter_checks(mps_emulator, params, code, message):
    assert call_error(sync_client(mps_emulator), "DescribeAigcImageTask", params) == (code, message)
