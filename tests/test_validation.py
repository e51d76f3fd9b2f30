from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_mps.capabilities import MODEL_CAPABILITIES, get_model_capabilities
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.validation import (
    build_aigc_image_request,
    is_literal,
    validate_literal_aigc_image_fields,
)

URL = "https://example.com/ref.png"

# (case id, request fields, exact error message)
INVALID_REQUESTS = [
    (
        "nothing-to-draw",
        {"prompt": None, "image_infos": None},
        "Invalid prompt None: a prompt or at least one reference image (image_infos) is required.",
    ),
    (
        "blank-prompt-counts-as-missing",
        {"prompt": "   \n"},
        "Invalid prompt None: a prompt or at least one reference image (image_infos) is required.",
    ),
    (
        "prompt-over-1000-characters",
        {"prompt": "猫" * 1001},
        "Invalid prompt '" + "猫" * 76 + "...: must be at most 1000 characters long, got 1001.",
    ),
    (
        "prompt-dict-from-template",
        {"prompt": {"subject": "cat"}},
        "Invalid prompt {'subject': 'cat'}: must be a string, got dict.",
    ),
    (
        "prompt-boolean",
        {"prompt": True},
        "Invalid prompt True: must be a string, got bool.",
    ),
    (
        "negative-prompt-list",
        {"prompt": "a cat", "negative_prompt": ["dogs"]},
        "Invalid negative_prompt ['dogs']: must be a string, got list.",
    ),
    (
        "model-name-dict",
        {"prompt": "a cat", "model_name": {"name": "GEM"}},
        "Invalid model_name {'name': 'GEM'}: must be a string, got dict.",
    ),
    (
        "image-url-not-http",
        {"image_infos": ["ftp://example.com/a.png"]},
        "Invalid image_infos[0] 'ftp://example.com/a.png': must be an http(s) URL of a reference image.",
    ),
    (
        "image-url-no-host",
        {"image_infos": ["https:///a.png"]},
        "Invalid image_infos[0] 'https:///a.png': must be an http(s) URL of a reference image.",
    ),
    (
        "image-url-relative",
        {"prompt": "a cat", "image_infos": [URL, "images/cat.jpg"]},
        "Invalid image_infos[1] 'images/cat.jpg': must be an http(s) URL of a reference image.",
    ),
    (
        "image-format-gif",
        {"image_infos": ["https://example.com/cat.GIF?x=1"]},
        "Invalid image_infos[0] 'https://example.com/cat.GIF?x=1': must name a jpeg, png or webp image; "
        "the URL names a .gif file.",
    ),
    (
        "image-format-bmp-in-dict",
        {"image_infos": [{"ImageUrl": "http://example.com/cat.bmp", "ReferenceType": "style"}]},
        "Invalid image_infos[0].ImageUrl 'http://example.com/cat.bmp': must name a jpeg, png or webp "
        "image; the URL names a .bmp file.",
    ),
    (
        "image-info-without-url",
        {"image_infos": [{"ReferenceType": "style"}]},
        "Invalid image_infos[0] {'ReferenceType': 'style'}: needs an ImageUrl.",
    ),
    (
        "image-info-unknown-key",
        {"image_infos": [{"url": URL}]},
        "Invalid image_infos[0] {'url': 'https://example.com/ref.png'}: has the unknown key 'url'; "
        "the known keys are ImageUrl, ReferenceType.",
    ),
    (
        "image-info-number",
        {"image_infos": [42]},
        "Invalid image_infos[0] 42: must be an image URL or an ImageInfo dict, got int.",
    ),
    (
        "image-infos-not-json",
        {"image_infos": "[https://example.com/a.png]"},
        "Invalid image_infos '[https://example.com/a.png]': must be a list of image URLs or ImageInfo "
        "dicts or a JSON string of one, got text that is not JSON.",
    ),
    (
        "image-infos-number",
        {"prompt": "a cat", "image_infos": 3},
        "Invalid image_infos 3: must be a list of image URLs or ImageInfo dicts, got int.",
    ),
    (
        "too-many-images-for-gem",
        {"prompt": "a cat", "model_name": "GEM", "model_version": "3.0", "image_infos": [URL] * 4},
        "Invalid image_infos ['https://example.com/ref.png', 'https://example.com/ref.png', "
        "'https://examp...: may hold at most 3 reference images for GEM 3.0, got 4.",
    ),
    (
        "too-many-images-for-jimeng",
        {"prompt": "a cat", "model_name": "Jimeng", "model_version": "4.0", "image_infos": [URL] * 2},
        "Invalid image_infos ['https://example.com/ref.png', 'https://example.com/ref.png']: "
        "may hold at most 1 reference image for Jimeng 4.0, got 2.",
    ),
    (
        "too-many-images-for-kling-without-version",
        {"prompt": "a cat", "model_name": "Kling", "image_infos": [URL] * 11},
        "Invalid image_infos ['https://example.com/ref.png', 'https://example.com/ref.png', "
        "'https://examp...: may hold at most 10 reference images for Kling, got 11.",
    ),
    (
        "output-image-count-zero",
        {"prompt": "a cat", "output_image_count": 0},
        "Invalid output_image_count 0: must be a positive integer.",
    ),
    (
        "output-image-count-text",
        {"prompt": "a cat", "output_image_count": "two"},
        "Invalid output_image_count 'two': must be a positive integer.",
    ),
    (
        "output-image-count-float",
        {"prompt": "a cat", "output_image_count": 2.5},
        "Invalid output_image_count 2.5: must be a positive integer.",
    ),
    (
        "output-image-count-bool",
        {"prompt": "a cat", "output_image_count": True},
        "Invalid output_image_count True: must be a positive integer.",
    ),
    (
        "enhance-prompt-yes",
        {"prompt": "a cat", "enhance_prompt": "yes"},
        "Invalid enhance_prompt 'yes': must be a boolean (true or false).",
    ),
    (
        "extra-parameters-unknown-key",
        {"prompt": "a cat", "extra_parameters": {"Ratio": "1:1"}},
        "Invalid extra_parameters {'Ratio': '1:1'}: has the unknown key 'Ratio'; the known keys are "
        "AspectRatio, Resolution, LogoAdd, OutputFormat.",
    ),
    (
        "extra-parameters-list",
        {"prompt": "a cat", "extra_parameters": ["16:9"]},
        "Invalid extra_parameters ['16:9']: must be a dict of AspectRatio, Resolution, LogoAdd, "
        "OutputFormat, got list.",
    ),
    (
        "logo-add-two",
        {"prompt": "a cat", "extra_parameters": {"LogoAdd": 2}},
        "Invalid extra_parameters.LogoAdd 2: must be 0 (no watermark) or 1 (add the watermark).",
    ),
    (
        "additional-parameters-not-json",
        {"prompt": "a cat", "additional_parameters": "{size: 1024x1024}"},
        "Invalid additional_parameters '{size: 1024x1024}': must be a JSON object (dict) or a JSON "
        "string of one, got text that is not JSON.",
    ),
    (
        "additional-parameters-json-array",
        {"prompt": "a cat", "additional_parameters": '["1024x1024"]'},
        "Invalid additional_parameters ['1024x1024']: must be a JSON object (dict), got list.",
    ),
    (
        "additional-parameters-not-serialisable",
        {"prompt": "a cat", "additional_parameters": {"seed": {1, 2}}},
        "Invalid additional_parameters {'seed': {1, 2}}: must hold only JSON values.",
    ),
    (
        "hunyuan-3-size-side-too-large",
        {
            "prompt": "a cat",
            "model_name": "Hunyuan",
            "model_version": "3.0",
            "additional_parameters": {"size": "4096x256"},
        },
        "Invalid additional_parameters.size '4096x256': must have width and height between 512 and "
        "2048 pixels for Hunyuan 3.0.",
    ),
    (
        "hunyuan-3-size-too-many-pixels",
        {
            "prompt": "a cat",
            "model_name": "Hunyuan",
            "model_version": "3.0",
            "additional_parameters": '{"size": "2048x1024"}',
        },
        "Invalid additional_parameters.size '2048x1024': must have width x height at most 1048576 "
        "pixels for Hunyuan 3.0, got 2097152.",
    ),
    (
        "qwen-size-too-small",
        {
            "prompt": "a cat",
            "model_name": "Qwen",
            "model_version": "0925",
            "additional_parameters": {"size": "256x256"},
        },
        "Invalid additional_parameters.size '256x256': must have width x height between 262144 and "
        "4194304 pixels for Qwen 0925, got 65536.",
    ),
    (
        "qwen-size-not-a-size",
        {
            "prompt": "a cat",
            "model_name": "Qwen",
            "model_version": "0925",
            "additional_parameters": {"size": "large"},
        },
        "Invalid additional_parameters.size 'large': must be WIDTHxHEIGHT in pixels for Qwen 0925.",
    ),
    (
        "store-cos-param-without-region",
        {"prompt": "a cat", "store_cos_param": {"CosBucketName": "bucket-125"}},
        "Invalid store_cos_param {'CosBucketName': 'bucket-125'}: needs CosBucketName and "
        "CosBucketRegion together; CosBucketRegion is missing.",
    ),
    (
        "store-cos-param-path-only",
        {"prompt": "a cat", "store_cos_param": {"cos_bucket_path": "aigc/"}},
        "Invalid store_cos_param {'cos_bucket_path': 'aigc/'}: needs CosBucketName and CosBucketRegion "
        "together; CosBucketName and CosBucketRegion are missing.",
    ),
    (
        "store-cos-param-unknown-key",
        {"prompt": "a cat", "store_cos_param": {"Bucket": "b"}},
        "Invalid store_cos_param {'Bucket': 'b'}: has the unknown key 'Bucket'; the known keys are "
        "CosBucketName, CosBucketRegion, CosBucketPath.",
    ),
    (
        "store-cos-param-text",
        {"prompt": "a cat", "store_cos_param": "bucket-125"},
        "Invalid store_cos_param 'bucket-125': must be a dict with CosBucketName and CosBucketRegion or a "
        "JSON string of one, got text that is not JSON.",
    ),
    (
        "unknown-field",
        {"prompt": "a cat", "seed": 7},
        "Invalid seed 7: is not a CreateAigcImageTask field; the fields are model_name, model_version, "
        "scene_type, prompt, negative_prompt, enhance_prompt, image_infos, output_image_count, "
        "extra_parameters, additional_parameters, store_cos_param, operator.",
    ),
]


# Enumerations copied from today's documentation: (case id, request fields, field, the rule and
# value as strict checks refuse them).  Without strict checks each is sent with a WARNING.
UNDOCUMENTED_VALUES = [
    (
        "aspect-ratio-not-a-ratio",
        {"prompt": "a cat", "extra_parameters": {"AspectRatio": "wide"}},
        "Invalid extra_parameters.AspectRatio 'wide': must be a width:height ratio such as 16:9.",
    ),
    (
        "aspect-ratio-not-listed-for-kling",
        {"prompt": "a cat", "model_name": "Kling", "extra_parameters": {"aspect_ratio": "5:4"}},
        "Invalid extra_parameters.AspectRatio '5:4': must be one of 16:9, 9:16, 1:1, 4:3, 3:4, 3:2, "
        "2:3, 21:9 for Kling.",
    ),
    (
        "resolution-unknown",
        {"prompt": "a cat", "model_name": "GEM", "extra_parameters": {"Resolution": "8K"}},
        "Invalid extra_parameters.Resolution '8K': must be one of 720P, 1080P, 2K, 4K for GEM.",
    ),
    (
        "resolution-lowercase",
        {"prompt": "a cat", "extra_parameters": {"Resolution": "2k"}},
        "Invalid extra_parameters.Resolution '2k': must be one of 720P, 1080P, 2K, 4K, 1K.",
    ),
    (
        "resolution-1080p-on-wand-vega-image",
        {"prompt": "a cat", "model_name": "wand-vega-image", "extra_parameters": {"Resolution": "1080P"}},
        "Invalid extra_parameters.Resolution '1080P': must be one of 1K, 2K, 4K for wand-vega-image.",
    ),
    (
        "output-format-jpg",
        {"prompt": "a cat", "extra_parameters": {"OutputFormat": "jpg"}},
        "Invalid extra_parameters.OutputFormat 'jpg': must be one of jpeg, png.",
    ),
]


def refusal(fields: dict[str, Any], **kwargs: Any) -> MpsInvalidParameterError:
    """The error ``build_aigc_image_request(fields, **kwargs)`` refuses the request with."""
    with pytest.raises(MpsInvalidParameterError) as raised:
        build_aigc_image_request(fields, **kwargs)
    return raised.value


@pytest.mark.parametrize(
    ("fields", "message"),
    [pytest.param(fields, message, id=case) for case, fields, message in INVALID_REQUESTS],
)
def test_invalid_request_is_refused_with_one_message_naming_field_value_and_rule(fields, message):
    refused = refusal(fields)

    assert str(refused) == message


def test_error_names_the_field_and_rule_as_attributes_and_fails_without_retry():
    from airflow.providers.common.compat.sdk import AirflowFailException

    refused = refusal({"prompt": "a cat", "output_image_count": -1})

    assert (refused.field, refused.rule, refused.value) == (
        "output_image_count",
        "must be a positive integer.",
        -1,
    )
    assert isinstance(refused, AirflowFailException)


def test_where_prefixes_field_names_for_batch_items():
    refused = refusal({"prompt": "x" * 1001}, where="requests[3].")

    assert refused.field == "requests[3].prompt"


def test_full_request_is_normalised_to_the_hooks_keyword_arguments():
    request = build_aigc_image_request(
        {
            "prompt": "A watercolor of a lighthouse",
            "model_name": "GEM",
            "model_version": 2.5,
            "negative_prompt": "people",
            "enhance_prompt": "True",
            "image_infos": [URL, {"image_url": "http://example.com/b.webp", "reference_type": "style"}, ""],
            "output_image_count": "2",
            "extra_parameters": {
                "aspect_ratio": "16:9",
                "Resolution": "2K",
                "LogoAdd": "0",
                "OutputFormat": None,
            },
            "additional_parameters": '{"seed": 7}',
            "store_cos_param": {"cos_bucket_name": "b-125", "cos_bucket_region": "ap-guangzhou"},
            "scene_type": None,
            "operator": "airflow",
        }
    )

    assert request == {
        "prompt": "A watercolor of a lighthouse",
        "model_name": "GEM",
        "model_version": "2.5",
        "negative_prompt": "people",
        "enhance_prompt": True,
        "image_infos": [
            {"ImageUrl": URL},
            {"ImageUrl": "http://example.com/b.webp", "ReferenceType": "style"},
        ],
        "output_image_count": 2,
        "extra_parameters": {"AspectRatio": "16:9", "Resolution": "2K", "LogoAdd": 0},
        "additional_parameters": {"seed": 7},
        "store_cos_param": {"CosBucketName": "b-125", "CosBucketRegion": "ap-guangzhou"},
        "operator": "airflow",
    }


def test_service_field_names_are_accepted_like_the_hooks():
    assert build_aigc_image_request({"Prompt": "a cat", "ModelName": "Qwen"}) == {
        "prompt": "a cat",
        "model_name": "Qwen",
    }


@pytest.mark.parametrize(
    ("image_infos", "expected"),
    [
        pytest.param(URL, [{"ImageUrl": URL}], id="one-url"),
        pytest.param(f'["{URL}"]', [{"ImageUrl": URL}], id="json-array-from-tojson"),
        pytest.param(f'{{"ImageUrl": "{URL}"}}', [{"ImageUrl": URL}], id="json-object"),
        pytest.param({"ImageUrl": URL}, [{"ImageUrl": URL}], id="one-dict"),
        pytest.param((URL,), [{"ImageUrl": URL}], id="tuple"),
        pytest.param(
            "https://example.com/render?id=7",
            [{"ImageUrl": "https://example.com/render?id=7"}],
            id="no-extension",
        ),
        pytest.param(
            "https://example.com/image.php?id=7",
            [{"ImageUrl": "https://example.com/image.php?id=7"}],
            id="script-url",
        ),
        pytest.param(
            "HTTPS://example.com/A.JPEG", [{"ImageUrl": "HTTPS://example.com/A.JPEG"}], id="upper-case"
        ),
    ],
)
def test_image_infos_accept_the_shapes_templates_produce(image_infos, expected):
    assert build_aigc_image_request({"image_infos": image_infos}) == {"image_infos": expected}


def test_empty_values_from_templates_are_left_out_of_the_request():
    assert build_aigc_image_request(
        {
            "prompt": "a cat",
            "negative_prompt": "",
            "image_infos": [],
            "enhance_prompt": "",
            "output_image_count": "",
            "extra_parameters": {"AspectRatio": "", "Resolution": None},
            "additional_parameters": "",
            "store_cos_param": {"CosBucketName": None},
        }
    ) == {"prompt": "a cat"}


def test_prompt_length_counts_characters_not_bytes():
    prompt = "猫" * 1000  # 3000 bytes in UTF-8

    assert build_aigc_image_request({"prompt": prompt}) == {"prompt": prompt}


@pytest.mark.parametrize(
    ("model_name", "model_version", "limit"),
    [
        ("GEM", "2.5", 3),
        ("GEM", None, 3),
        ("Hunyuan", "3.5-preview", 5),
        ("Hunyuan", "3.0", 3),
        ("Vidu", "q2", 7),
        ("Kling", "2.1", 4),
        ("Kling", "O1", 10),
        ("Kling", "3.0-Omni", 10),
        ("Kling", "3.0", 1),
        ("wand-vega-image", "1.0-pro", 10),
        ("Qwen", "0925", 1),
    ],
)
def test_reference_image_limit_of_each_known_model_is_accepted_up_to_the_limit(
    model_name, model_version, limit
):
    fields = {"prompt": "a cat", "model_name": model_name, "model_version": model_version}

    request = build_aigc_image_request({**fields, "image_infos": [URL] * limit})

    assert len(request["image_infos"]) == limit
    with pytest.raises(MpsInvalidParameterError, match=f"may hold at most {limit} reference image"):
        build_aigc_image_request({**fields, "image_infos": [URL] * (limit + 1)})


@pytest.mark.parametrize(
    ("fields", "message"),
    [pytest.param(fields, message, id=case) for case, fields, message in UNDOCUMENTED_VALUES],
)
def test_strict_checks_refuse_a_value_outside_todays_enumerations(fields, message):
    refused = refusal(fields, strict=True)

    assert str(refused) == message


@pytest.mark.parametrize(
    ("fields", "message"),
    [pytest.param(fields, message, id=case) for case, fields, message in UNDOCUMENTED_VALUES],
)
def test_a_value_outside_todays_enumerations_is_sent_with_a_warning(fields, message, caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        request = build_aigc_image_request(fields)

    field, value, rule = _split(message)
    key = field.split(".")[-1]
    assert request["extra_parameters"][key] == value
    assert [record.getMessage() for record in caplog.records] == [
        f"{field} {value!r} is not among the values documented today ({rule}); sending it unchanged "
        "and letting the service decide. Pass strict_validation=True to refuse such values before sending."
    ]


def _split(message: str) -> tuple[str, str, str]:
    """``"Invalid F 'V': RULE."`` -> ``(F, V, RULE)``."""
    head, rule = message.removeprefix("Invalid ").split(": ", 1)
    field, quoted = head.split(" ", 1)
    return field, quoted.strip("'"), rule.removesuffix(".")


def test_unknown_model_passes_through_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        request = build_aigc_image_request(
            {"prompt": "a cat", "model_name": "Seedream", "image_infos": [URL] * 12}
        )

    assert request["model_name"] == "Seedream"
    assert len(request["image_infos"]) == 12
    assert [record.getMessage() for record in caplog.records] == [
        "model_name 'Seedream' is not among the values documented today (must be a model this provider "
        "knows (Hunyuan, GEM, Jimeng, Qwen, Vidu, Kling, wand-vega-image)); sending it unchanged and "
        "letting the service decide. Pass strict_validation=True to refuse such values before sending."
    ]


def test_strict_checks_refuse_an_unknown_model():
    refused = refusal({"prompt": "a cat", "model_name": "Seedream"}, strict=True)

    assert str(refused) == (
        "Invalid model_name 'Seedream': must be a model this provider knows (Hunyuan, GEM, Jimeng, Qwen, "
        "Vidu, Kling, wand-vega-image)."
    )


def test_unknown_version_of_a_known_model_passes_through_without_an_image_limit(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        request = build_aigc_image_request(
            {"prompt": "a cat", "model_name": "GEM", "model_version": "4.0", "image_infos": [URL] * 5}
        )

    assert len(request["image_infos"]) == 5
    assert [record.getMessage() for record in caplog.records] == [
        "model_version '4.0' is not among the values documented today (must be a version of GEM this "
        "provider knows (2.5, 3.0); no reference-image limit is checked for it); sending it unchanged and "
        "letting the service decide. Pass strict_validation=True to refuse such values before sending."
    ]


def test_strict_checks_refuse_an_unknown_version_of_a_known_model():
    refused = refusal(
        {"prompt": "a cat", "model_name": "GEM", "model_version": "4.0"},
        where="requests[2].",
        strict=True,
    )

    assert str(refused) == (
        "Invalid requests[2].model_version '4.0': must be a version of GEM this provider knows (2.5, 3.0); "
        "no reference-image limit is checked for it."
    )


def test_hard_rules_stay_errors_for_an_unknown_version_of_a_known_model():
    refused = refusal({"prompt": "x" * 1001, "model_name": "GEM", "model_version": "4.0"})

    assert refused.field == "prompt"


def test_unknown_scene_type_passes_through_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        request = build_aigc_image_request(
            {"prompt": "a cat", "model_name": "GEM", "scene_type": "3d_panorama"}
        )

    assert request["scene_type"] == "3d_panorama"
    assert [record.getMessage() for record in caplog.records] == [
        "scene_type '3d_panorama' is not among the values documented today (must be a scene type "
        "documented for GEM (none)); sending it unchanged and letting the service decide. Pass "
        "strict_validation=True to refuse such values before sending."
    ]


def test_capabilities_table_holds_the_documented_and_sdk_models():
    assert {name: dict(model.versions) for name, model in MODEL_CAPABILITIES.items()} == {
        "Hunyuan": {"3.5-preview": 5, "3.0": 3},
        "GEM": {"2.5": 3, "3.0": 3},
        "Jimeng": {"4.0": 1},
        "Qwen": {"0925": 1},
        "Vidu": {"q2": 7},
        "Kling": {"2.1": 4, "O1": 10, "3.0": 1, "3.0-Omni": 10},
        "wand-vega-image": {"1.0-lite": 10, "1.0-flash": 10, "1.0-pro": 10},
    }
    assert get_model_capabilities("gem") is None


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("a cat", True),
        ("A watercolor of {{ ti.xcom_pull(task_ids='pick') }}", False),
        ("{% if params.x %}x{% endif %}", False),
        ([URL, {"ImageUrl": "{{ params.url }}"}], False),
        ({"AspectRatio": "16:9", "LogoAdd": 1}, True),
        (None, True),
        (object(), False),
    ],
)
def test_is_literal_tells_final_values_from_templates_and_runtime_objects(value, literal):
    assert is_literal(value) is literal


def test_parse_time_validation_skips_templated_fields_and_the_rules_that_need_them():
    validate_literal_aigc_image_fields(
        {
            "prompt": "{{ params.prompt }}",
            "image_infos": None,
            "model_name": "{{ params.model }}",
            "extra_parameters": {"Resolution": "1K"},
            "additional_parameters": {"size": "99999x1"},
        }
    )


def test_parse_time_validation_refuses_a_wrong_literal_next_to_templated_fields():
    with pytest.raises(MpsInvalidParameterError) as raised:
        validate_literal_aigc_image_fields(
            {"prompt": "{{ params.prompt }}", "model_name": "GEM", "extra_parameters": {"LogoAdd": 3}}
        )

    assert str(raised.value) == (
        "Invalid extra_parameters.LogoAdd 3: must be 0 (no watermark) or 1 (add the watermark)."
    )


def test_parse_time_strict_validation_refuses_an_undocumented_literal_next_to_templated_fields():
    with pytest.raises(MpsInvalidParameterError) as raised:
        validate_literal_aigc_image_fields(
            {"prompt": "{{ params.prompt }}", "model_name": "GEM", "extra_parameters": {"Resolution": "1K"}},
            strict=True,
        )

    assert str(raised.value) == (
        "Invalid extra_parameters.Resolution '1K': must be one of 720P, 1080P, 2K, 4K for GEM."
    )


def test_parse_time_validation_passes_an_undocumented_literal_silently(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        validate_literal_aigc_image_fields(
            {"prompt": "a cat", "model_name": "GEM", "extra_parameters": {"Resolution": "1K"}}
        )

    assert caplog.records == []


def test_parse_time_validation_logs_nothing_about_unknown_models(caplog):
    with caplog.at_level(logging.WARNING, logger="airflow_provider_mps.validation"):
        validate_literal_aigc_image_fields({"prompt": "a cat", "model_name": "Seedream"})

    assert caplog.records == []
