"""Request building refuses each broken field with one message naming it, and normalises what it accepts."""

from __future__ import annotations

import pytest

from airflow_provider_mps.validation import build_aigc_image_request
from tests.conftest import refusal

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
