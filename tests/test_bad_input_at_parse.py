"""Bad literal values are refused when the DAG file is parsed: the DAG does not import."""

from __future__ import annotations

import re

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowException, BaseSensorOperator

from airflow_provider_mps.exceptions import MpsInvalidParameterError
from tests._bad_input import (
    PROMPT_RULE,
    BadInput,
    Upstream,
    invalid,
    operator_row,
    row_param,
    sensor_row,
    transfer_row,
)


def _sensor_argument_error() -> str:
    """What Airflow's own check of sensor arguments raises: AirflowException to 3.1, ValueError on 3.3."""
    try:
        BaseSensorOperator(task_id="probe", poke_interval=-1)
    except Exception as error:
        return type(error).__name__
    raise AssertionError("Airflow accepted a negative poke_interval.")


SENSOR_ARGUMENT_ERROR = _sensor_argument_error()
SECONDS_RULE = "must be a number of seconds greater than 0."

PARSE_ROWS: list[BadInput] = [
    # -- operator: literal values, refused when the DAG file is parsed -------------------------
    operator_row(
        "op_rate_limit_zero",
        "parse",
        invalid("rate_limit", "0", "must be a number of requests per second greater than 0."),
        rate_limit=0,
    ),
    operator_row(
        "op_poll_interval_zero",
        "parse",
        invalid("poll_interval", "0", SECONDS_RULE),
        poll_interval=0,
    ),
    operator_row(
        "op_poll_interval_negative",
        "parse",
        invalid("poll_interval", "-5", SECONDS_RULE),
        poll_interval=-5,
    ),
    operator_row(
        "op_timeout_zero",
        "parse",
        invalid("timeout", "0", SECONDS_RULE),
        timeout=0,
    ),
    operator_row(
        "op_timeout_negative",
        "parse",
        invalid("timeout", "-1.5", SECONDS_RULE),
        timeout=-1.5,
    ),
    operator_row(
        "op_literal_blank_prompt",
        "parse",
        invalid("prompt", "None", PROMPT_RULE),
        prompt="  ",
    ),
    operator_row(
        "op_cos_bucket_without_region",
        "parse",
        invalid(
            "store_cos_param",
            "{'CosBucketName': 'images-1250000000'}",
            "needs CosBucketName and CosBucketRegion together; CosBucketRegion is missing.",
        ),
        store_cos_param={"CosBucketName": "images-1250000000"},
    ),
    operator_row(
        "op_logo_add_not_0_or_1",
        "parse",
        invalid("extra_parameters.LogoAdd", "2", "must be 0 (no watermark) or 1 (add the watermark)."),
        extra_parameters={"LogoAdd": 2},
    ),
    operator_row(
        "op_unknown_extra_parameter",
        "parse",
        invalid(
            "extra_parameters",
            "{'Size': '1K'}",
            "has the unknown key 'Size'; the known keys are AspectRatio, Resolution, LogoAdd, OutputFormat.",
        ),
        extra_parameters={"Size": "1K"},
    ),
    operator_row(
        "op_size_out_of_range_for_the_model",
        "parse",
        invalid(
            "additional_parameters.size",
            "'4096x4096'",
            "must have width and height between 512 and 2048 pixels for Hunyuan 3.0.",
        ),
        model_name="Hunyuan",
        model_version="3.0",
        additional_parameters={"size": "4096x4096"},
    ),
    operator_row(
        "op_aspect_ratio_the_model_lacks",
        "parse",
        invalid(
            "extra_parameters.AspectRatio",
            "'5:4'",
            "must be one of 16:9, 9:16, 1:1, 4:3, 3:4, 3:2, 2:3, 21:9 for Kling.",
        ),
        model_name="Kling",
        extra_parameters={"AspectRatio": "5:4"},
        strict_validation=True,
    ),
    operator_row(
        "op_image_info_without_url",
        "parse",
        invalid("image_infos[0]", "{'ReferenceType': 'style'}", "needs an ImageUrl."),
        image_infos=[{"ReferenceType": "style"}],
    ),
    # -- sensor ---------------------------------------------------------------------------------
    sensor_row(
        "sensor_negative_poke_interval",
        "parse",
        "Operator arg `poke_interval` must be timedelta object or a non-negative number",
        error=SENSOR_ARGUMENT_ERROR,
        mps_task_id="t",
        poke_interval=-1,
    ),
    sensor_row(
        "sensor_negative_timeout",
        "parse",
        "Operator arg `timeout` must be timedelta object or a non-negative number",
        error=SENSOR_ARGUMENT_ERROR,
        mps_task_id="t",
        timeout=-1,
    ),
    # -- transfer -------------------------------------------------------------------------------
    transfer_row(
        "transfer_zero_poll_interval",
        "parse",
        invalid("poll_interval", "0", SECONDS_RULE),
        poll_interval=0,
    ),
    transfer_row(
        "transfer_negative_timeout",
        "parse",
        invalid("timeout", "-1", SECONDS_RULE),
        timeout=-1,
    ),
]


@pytest.mark.parametrize("row", [row_param(row) for row in PARSE_ROWS])
def test_literal_bad_value_is_refused_when_the_dag_is_parsed(row):
    dag = DAG(f"bad_input_parse_{row.id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    refusals = (MpsInvalidParameterError, ValueError, AirflowException)
    with dag, pytest.raises(refusals, match=re.escape(row.message)) as raised:
        row.make(Upstream())

    assert (type(raised.value).__name__, str(raised.value)) == (row.error, row.message)
