"""Parse-time checks of literal fields run once per distinct configuration, and never hide an error."""

from __future__ import annotations

import pytest

from airflow_provider_mps import validation
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.operators.mps_batch import MpsCreateAigcImageBatchOperator


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Every configuration the real validation was run on, with an empty memory to start from."""
    seen: list[dict] = []
    validate = validation.validate_literal_aigc_image_fields

    def recording(fields, *, where="", strict=False):
        seen.append(dict(fields))
        validate(fields, where=where, strict=strict)

    monkeypatch.setattr(validation, "_passed_literal_keys", set())
    monkeypatch.setattr(validation, "validate_literal_aigc_image_fields", recording)
    return seen


def test_a_repeated_configuration_with_templated_prompts_is_validated_once(checks):
    for n in range(3):
        MpsCreateAigcImageTaskOperator(
            task_id=f"product_{n}",
            prompt=f"Product {n} for {{{{ ds }}}}",
            model_name="GEM",
            extra_parameters={"AspectRatio": "1:1"},
        )

    assert checks == [
        {"prompt": "Product 0 for {{ ds }}", "model_name": "GEM", "extra_parameters": {"AspectRatio": "1:1"}}
    ]


def test_each_distinct_literal_value_is_validated(checks):
    MpsCreateAigcImageTaskOperator(task_id="a", prompt="a cat")
    MpsCreateAigcImageTaskOperator(task_id="b", prompt="a dog")
    MpsCreateAigcImageTaskOperator(task_id="c", prompt="a cat", extra_parameters={"AspectRatio": "16:9"})

    assert checks == [
        {"prompt": "a cat"},
        {"prompt": "a dog"},
        {"prompt": "a cat", "extra_parameters": {"AspectRatio": "16:9"}},
    ]


def test_an_invalid_configuration_fails_every_time_it_is_parsed(checks):
    for task_id in ("first", "second"):
        with pytest.raises(MpsInvalidParameterError) as raised:
            MpsCreateAigcImageTaskOperator(task_id=task_id, prompt="{{ p }}", extra_parameters={"LogoAdd": 2})

        assert (
            str(raised.value)
            == "Invalid extra_parameters.LogoAdd 2: must be 0 (no watermark) or 1 (add the watermark)."
        )
    assert len(checks) == 2


def test_values_that_compare_equal_but_differ_in_type_are_told_apart(checks):
    MpsCreateAigcImageTaskOperator(task_id="boolean", prompt="a cat", enhance_prompt=True)

    with pytest.raises(MpsInvalidParameterError) as raised:
        MpsCreateAigcImageTaskOperator(task_id="number", prompt="a cat", enhance_prompt=1)

    assert str(raised.value) == "Invalid enhance_prompt 1: must be a boolean (true or false)."


def test_batch_items_share_the_memory_of_checked_configurations(checks):
    MpsCreateAigcImageBatchOperator(
        task_id="one", requests=["a cat", "a dog"], shared_fields={"model_name": "GEM"}
    )
    MpsCreateAigcImageBatchOperator(task_id="two", requests=["a cat"], shared_fields={"model_name": "GEM"})

    assert checks == [
        {"model_name": "GEM", "prompt": "a cat"},
        {"model_name": "GEM", "prompt": "a dog"},
    ]
