"""Request building: snake_case fields of plain types become the API's request, or a clear local error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_mps.core.api import build_describe_params, sdk_request
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.validation import build_create_params

if TYPE_CHECKING:
    from collections.abc import Callable


def test_reference_images_alone_need_no_prompt():
    assert build_create_params({"image_infos": ("https://example.com/a.png",)}) == {
        "ImageInfos": [{"ImageUrl": "https://example.com/a.png"}]
    }


def test_logo_add_accepts_a_boolean_and_sends_0_or_1():
    params = build_create_params({"prompt": "p", "extra_parameters": {"logo_add": True}})

    assert params["ExtraParameters"] == {"LogoAdd": 1}


def test_sdk_request_model_serialises_back_to_the_same_params():
    params = build_create_params(
        {
            "prompt": "p",
            "image_infos": [{"ImageUrl": "https://example.com/a.png", "ReferenceType": "asset"}],
            "extra_parameters": {"Resolution": "1080P"},
            "store_cos_param": {
                "CosBucketName": "b-1250000000",
                "CosBucketRegion": "ap-guangzhou",
                "CosBucketPath": "x/",
            },
        }
    )

    assert sdk_request("CreateAigcImageTask", params)._serialize() == params


# The rules themselves are tested in tests/test_validation*.py: the hook has no checks of its own.
def refusal(build: Callable[[Any], Any], argument: Any) -> str:
    """The message of the :class:`MpsInvalidParameterError` that ``build(argument)`` raises."""
    with pytest.raises(MpsInvalidParameterError) as raised:
        build(argument)
    return str(raised.value)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Invalid prompt None: a prompt or at least one reference image (image_infos) is required."),
        ({"prompt": "p", "model_name": ["GEM"]}, "Invalid model_name ['GEM']: must be a string, got list."),
        (
            {"prompt": "p", "output_image_count": 0},
            "Invalid output_image_count 0: must be a positive integer.",
        ),
        (
            {"prompt": "p", "extra_parameters": {"AspectRatio": "1:1", "aspect_ratio": "16:9"}},
            "Invalid extra_parameters {'AspectRatio': '1:1', 'aspect_ratio': '16:9'}: "
            "sets AspectRatio twice.",
        ),
        (
            {"prompt": "p", "store_cos_param": {"CosBucketName": "b"}},
            "Invalid store_cos_param {'CosBucketName': 'b'}: needs CosBucketName and CosBucketRegion "
            "together; CosBucketRegion is missing.",
        ),
    ],
)
def test_invalid_fields_are_refused_naming_the_field_and_the_rule(fields, message):
    assert refusal(build_create_params, fields) == message


def test_describe_needs_a_task_id():
    assert (
        refusal(build_describe_params, "") == "Invalid task_id '': must be a non-empty MPS TaskId, not blank."
    )
