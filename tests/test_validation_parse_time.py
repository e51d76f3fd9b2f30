"""Parse-time validation checks the literal fields only, leaving templates and XComArgs for run time."""

from __future__ import annotations

import logging

import pytest

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.validation import is_literal, validate_literal_aigc_image_fields

URL = "https://example.com/ref.png"


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
