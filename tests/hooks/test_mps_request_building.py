"""Request building: snake_case fields of plain types become the API's request, or a clear local error."""

from __future__ import annotations

import pytest

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.hooks._mps_api import build_create_params, build_describe_params, sdk_request


def test_reference_images_alone_need_no_prompt():
    assert build_create_params(image_infos=("https://example.com/a.png",)) == {
        "ImageInfos": [{"ImageUrl": "https://example.com/a.png"}]
    }


def test_logo_add_accepts_a_boolean_and_sends_0_or_1():
    params = build_create_params(prompt="p", extra_parameters={"logo_add": True})

    assert params["ExtraParameters"] == {"LogoAdd": 1}


def test_sdk_request_model_serialises_back_to_the_same_params():
    params = build_create_params(
        prompt="p",
        image_infos=[{"ImageUrl": "https://example.com/a.png", "ReferenceType": "asset"}],
        extra_parameters={"Resolution": "1080P"},
        store_cos_param={
            "CosBucketName": "b-1250000000",
            "CosBucketRegion": "ap-guangzhou",
            "CosBucketPath": "x/",
        },
    )

    assert sdk_request("CreateAigcImageTask", params)._serialize() == params


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "Invalid prompt None: is required when no reference image is given in image_infos."),
        (
            {"prompt": "  "},
            "Invalid prompt '  ': is required when no reference image is given in image_infos.",
        ),
        ({"prompt": 42}, "Invalid prompt 42: must be a string, not int."),
        ({"prompt": "p", "model_name": ["GEM"]}, "Invalid model_name ['GEM']: must be a string, not list."),
        ({"prompt": "p", "enhance_prompt": "yes"}, "Invalid enhance_prompt 'yes': must be True or False."),
        ({"prompt": "p", "output_image_count": 0}, "Invalid output_image_count 0: must be at least 1."),
        ({"prompt": "p", "output_image_count": True}, "Invalid output_image_count True: must be an integer."),
        (
            {"image_infos": "https://example.com/a.png"},
            "Invalid image_infos 'https://example.com/a.png': must be a list of image URLs or of "
            "{'ImageUrl', 'ReferenceType'} dicts.",
        ),
        ({"image_infos": [""]}, "Invalid image_infos[0].ImageUrl '': must be a non-empty URL string."),
        (
            {"image_infos": [{"url": "https://example.com/a.png"}]},
            "Invalid image_infos[0] {'url': 'https://example.com/a.png'}: has unknown key 'url'; known keys "
            "are ImageUrl, ReferenceType.",
        ),
        (
            {"prompt": "p", "extra_parameters": {"aspect": "1:1"}},
            "Invalid extra_parameters {'aspect': '1:1'}: has unknown key 'aspect'; known keys are "
            "AspectRatio, LogoAdd, OutputFormat, Resolution.",
        ),
        (
            {"prompt": "p", "extra_parameters": {"AspectRatio": "1:1", "aspect_ratio": "16:9"}},
            "Invalid extra_parameters {'AspectRatio': '1:1', 'aspect_ratio': '16:9'}: "
            "sets AspectRatio twice.",
        ),
        (
            {"prompt": "p", "extra_parameters": {"LogoAdd": 2}},
            "Invalid extra_parameters.LogoAdd 2: must be 0 or 1.",
        ),
        (
            {"prompt": "p", "extra_parameters": {"Resolution": 1080}},
            "Invalid extra_parameters.Resolution 1080: must be a string, not int.",
        ),
        (
            {"prompt": "p", "additional_parameters": "size=1024"},
            "Invalid additional_parameters 'size=1024': must be a dict or a string holding a JSON object, "
            'such as \'{"size":"1024x1024"}\'.',
        ),
        (
            {"prompt": "p", "additional_parameters": "[1, 2]"},
            "Invalid additional_parameters '[1, 2]': must be a dict or a string holding a JSON object, "
            'such as \'{"size":"1024x1024"}\'.',
        ),
        (
            {"prompt": "p", "store_cos_param": {"CosBucketName": "b"}},
            "Invalid store_cos_param.CosBucketRegion None: is required when results are stored in COS.",
        ),
    ],
)
def test_invalid_fields_are_refused_naming_the_field_and_the_rule(fields, message):
    with pytest.raises(MpsInvalidParameterError) as raised:
        build_create_params(**fields)

    assert str(raised.value) == message


def test_describe_needs_a_task_id():
    with pytest.raises(MpsInvalidParameterError) as raised:
        build_describe_params("")

    assert str(raised.value) == "Invalid task_id '': must be a non-empty MPS TaskId string."
