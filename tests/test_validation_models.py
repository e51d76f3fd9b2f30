"""Each known model's limits, and undocumented values or models: a warning, or refused when strict."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_mps.capabilities import MODEL_CAPABILITIES, get_model_capabilities
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.validation import build_aigc_image_request
from tests.conftest import refusal

URL = "https://example.com/ref.png"

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
