"""
Bad input is refused clearly: one message naming the field and the rule, no retry, nothing sent.

Each row of :data:`BAD_INPUTS` is one bad value given to the operator, the sensor, the transfer
or the connection.  Values that are final when the DAG file is parsed are refused there (the DAG
does not import); values that come out of templates, XComs or the connection are refused when
the task runs.  All the run-time rows run as tasks of one DAG, once, through ``dag.test()``
(retries=2, retry delay 0), with the default connection pointing at the emulator; each row then
checks the exception its task failed with, its final state and try number.  The emulator must
have received nothing at all: every problem here is detectable locally.

A missing connection is Airflow's ``AirflowNotFoundException``, which Airflow retries (a deploy
may add the connection between tries); the row records that.  Before Airflow 3.3 the create
operator refuses its own retry (it cannot know that the first try created nothing), so there the
row's second try fails with that refusal instead.  Rows marked ``xfail`` describe a known gap (see
their reason); they flip to passing when it is fixed.

The parse-time rows are in ``test_bad_input_at_parse.py``, two unusable destinations of the
transfer in ``test_bad_input_destination.py``; the rows' helpers are in ``_bad_input.py``.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV, EmulatorHandle
from tests._bad_input import (
    BAD,
    PROMPT_RULE,
    RETRIES,
    BadInput,
    FailureRecorder,
    Upstream,
    invalid,
    op,
    operator_row,
    row_param,
    sensor,
    sensor_row,
    transfer,
    transfer_row,
)
from tests.operators._airflow_records import task_states
from tests.operators._dag_runs import run_dag
from tests.test_bad_input_at_parse import PARSE_ROWS

if TYPE_CHECKING:
    from collections.abc import Callable

DAG_ID = "bad_input_table"
CREDS = "MpsConnectionConfigError"
PARAMS = {
    "blank": "",
    "spaces": "   ",
    "long_ascii": "x" * 1001,
    "long_cjk": "画" * 1001,
    "four_urls": [f"https://example.com/{n}.png" for n in range(4)],
    "ftp_url": "ftp://example.com/reference.png",
    "gif_url": "https://example.com/reference.gif",
    "broken_json": '{"size": ',
    "json_array": "[1, 2]",
    "zero": 0,
    "maybe": "maybe",
    "resolution_8k": {"Resolution": "8K"},
    "bad_region": "AP_GUANGZHOU",
}
ENDPOINT_RULE = (
    "must be a full http:// or https:// URL with a host and no path, query or credentials, such as "
    "https://mps.tencentcloudapi.com or http://127.0.0.1:9100 for the local emulator."
)
BLANK_TASK_ID_RULE = "must be a non-empty MPS TaskId, not blank."
REGION_RULE = (
    "must be a Tencent Cloud region name in lower case, such as ap-guangzhou, na-siliconvalley or "
    "ap-shanghai-fsi."
)


def connection_row(
    row_id: str,
    task_: Callable[..., Callable[[Upstream], Any]],
    message: str,
    connection: dict[str, Any],
    *,
    error: str = BAD,
    **kwargs: Any,
) -> BadInput:
    """A run-time row: the ``task_`` (op, sensor or transfer) ``row_id`` uses the row's own bad connection."""
    make = task_(row_id, mps_conn_id=f"bad_{row_id}", **kwargs)
    return BadInput(row_id, "connection", "run", make, error, message, connection=connection)


def extra_row(
    row_id: str,
    task_: Callable[..., Callable[[Upstream], Any]],
    extra: str,
    value: Any,
    shown: str,
    rule: str,
    **kwargs: Any,
) -> BadInput:
    """A :func:`connection_row` whose extra ``extra`` holds ``value`` (``shown`` in the message)."""
    message = conn_message(row_id, extra, shown, rule)
    return connection_row(row_id, task_, message, {"extra": {extra: value}}, **kwargs)


def conn_message(row_id: str, extra: str, shown: str, rule: str) -> str:
    return invalid(f"extra '{extra}' of connection 'bad_{row_id}'", shown, rule)


LONG_ASCII_SHOWN = "'" + "x" * 76 + "..."
LONG_CJK_SHOWN = "'" + "画" * 76 + "..."

RUN_ROWS: list[BadInput] = [
    # -- operator: values from templates and XComs, refused when the task runs ---------------
    operator_row(
        "op_empty_prompt_and_no_images",
        "run",
        invalid("prompt", "None", PROMPT_RULE),
        prompt="{{ params.blank }}",
    ),
    operator_row(
        "op_prompt_of_spaces",
        "run",
        invalid("prompt", "None", PROMPT_RULE),
        prompt="{{ params.spaces }}",
    ),
    operator_row(
        "op_prompt_over_1000_characters",
        "run",
        invalid("prompt", LONG_ASCII_SHOWN, "must be at most 1000 characters long, got 1001."),
        prompt="{{ params.long_ascii }}",
    ),
    operator_row(
        "op_multibyte_prompt_over_1000_characters",
        "run",
        invalid("prompt", LONG_CJK_SHOWN, "must be at most 1000 characters long, got 1001."),
        prompt="{{ params.long_cjk }}",
    ),
    operator_row(
        "op_prompt_is_a_dict_from_xcom",
        "run",
        invalid("prompt", "{'not': 'a string'}", "must be a string, got dict."),
        prompt=lambda up: up.a_dict,
    ),
    operator_row(
        "op_too_many_images_for_the_model",
        "run",
        invalid(
            "image_infos",
            "['https://example.com/0.png', 'https://example.com/1.png', 'https://example.c...",
            "may hold at most 3 reference images for GEM, got 4.",
        ),
        model_name="GEM",
        image_infos="{{ params.four_urls | tojson }}",
    ),
    operator_row(
        "op_non_http_image_url",
        "run",
        invalid(
            "image_infos[0]",
            "'ftp://example.com/reference.png'",
            "must be an http(s) URL of a reference image.",
        ),
        image_infos="{{ params.ftp_url }}",
    ),
    operator_row(
        "op_unsupported_image_format",
        "run",
        invalid(
            "image_infos[0]",
            "'https://example.com/reference.gif'",
            "must name a jpeg, png or webp image; the URL names a .gif file.",
        ),
        image_infos="{{ params.gif_url }}",
    ),
    operator_row(
        "op_additional_parameters_not_json",
        "run",
        invalid(
            "additional_parameters",
            "'{\"size\": '",
            "must be a JSON object (dict) or a JSON string of one, got text that is not JSON.",
        ),
        additional_parameters="{{ params.broken_json }}",
    ),
    operator_row(
        "op_additional_parameters_json_array",
        "run",
        invalid("additional_parameters", "[1, 2]", "must be a JSON object (dict), got list."),
        additional_parameters="{{ params.json_array }}",
    ),
    operator_row(
        "op_zero_images_from_template",
        "run",
        invalid("output_image_count", "'0'", "must be a positive integer."),
        output_image_count="{{ params.zero }}",
    ),
    operator_row(
        "op_enhance_prompt_not_a_boolean",
        "run",
        invalid("enhance_prompt", "'maybe'", "must be a boolean (true or false)."),
        enhance_prompt="{{ params.maybe }}",
    ),
    operator_row(
        "op_resolution_the_model_lacks",
        "run",
        invalid("extra_parameters.Resolution", "'8K'", "must be one of 720P, 1080P, 2K, 4K for GEM."),
        model_name="GEM",
        extra_parameters="{{ params.resolution_8k | tojson }}",
        strict_validation=True,
    ),
    operator_row(
        "op_region_override_not_a_region",
        "run",
        invalid("region", "'AP_GUANGZHOU'", REGION_RULE),
        region="{{ params.bad_region }}",
    ),
    # -- sensor ---------------------------------------------------------------------------------
    sensor_row(
        "sensor_task_id_rendered_none",
        "run",
        invalid(
            "mps_task_id", "'None'", "rendered to 'None'; the XCom or value it was templated from is missing."
        ),
        mps_task_id="{{ ti.xcom_pull(task_ids='returns_nothing') }}",
    ),
    sensor_row(
        "sensor_blank_task_id",
        "run",
        invalid("mps_task_id", "'   '", BLANK_TASK_ID_RULE),
        mps_task_id="{{ params.spaces }}",
    ),
    sensor_row(
        "sensor_deferrable_empty_task_id",
        "run",
        invalid("mps_task_id", "''", BLANK_TASK_ID_RULE),
        mps_task_id="{{ params.blank }}",
        deferrable=True,
    ),
    sensor_row(
        "sensor_task_id_is_a_dict",
        "run",
        invalid("mps_task_id", "{'not': 'a string'}", "must be an MPS TaskId string, not a dict."),
        mps_task_id=lambda up: up.a_dict,
    ),
    # -- transfer -------------------------------------------------------------------------------
    transfer_row(
        "transfer_blank_task_id",
        "run",
        invalid("mps_task_id", "''", BLANK_TASK_ID_RULE),
        mps_task_id="{{ params.blank }}",
    ),
    transfer_row(
        "transfer_empty_destination",
        "run",
        invalid("destination", "''", "must be an object storage URL such as s3://bucket/path."),
        destination="{{ params.blank }}",
    ),
    # -- connection -----------------------------------------------------------------------------
    BadInput(
        "conn_missing",
        "connection",
        "run",
        op("conn_missing", mps_conn_id="mps_no_such_connection"),
        "AirflowNotFoundException",
        "The conn_id `mps_no_such_connection` isn't defined",
        retried=True,
    ),
    extra_row(
        "conn_endpoint_without_scheme",
        op,
        "endpoint",
        "mps.tencentcloudapi.com",
        "'mps.tencentcloudapi.com'",
        ENDPOINT_RULE,
    ),
    extra_row(
        "conn_endpoint_with_a_path",
        sensor,
        "endpoint",
        "http://127.0.0.1:9100/v3",
        "'http://127.0.0.1:9100/v3'",
        ENDPOINT_RULE,
        mps_task_id="t",
    ),
    extra_row(
        "conn_endpoint_port_out_of_range",
        transfer,
        "endpoint",
        "http://127.0.0.1:99999",
        "'http://127.0.0.1:99999'",
        ENDPOINT_RULE,
    ),
    extra_row("conn_region_not_a_region", op, "region", "Guangzhou", "'Guangzhou'", REGION_RULE),
    extra_row(
        "conn_request_timeout_zero",
        op,
        "request_timeout",
        0,
        "0",
        "must be a number of seconds greater than 0, such as 60.",
    ),
    extra_row("conn_unknown_language", op, "language", "fr-FR", "'fr-FR'", "must be en-US or zh-CN."),
    extra_row(
        "conn_proxy_without_scheme",
        op,
        "proxy",
        "user:pa55@proxy.example.com",
        "'<redacted>'",
        "must be a proxy URL with a scheme and a host, such as http://proxy.example.com:3128.",
    ),
    connection_row(
        "conn_secret_id_without_secret_key",
        op,
        "Connection 'bad_conn_secret_id_without_secret_key' has a SecretId (login) but no SecretKey "
        "(password); set both, or neither to use the Tencent Cloud credential chain.",
        {"password": None},
        error=CREDS,
    ),
    connection_row(
        "conn_secret_key_without_secret_id",
        sensor,
        "Connection 'bad_conn_secret_key_without_secret_id' has a SecretKey (password) but no SecretId "
        "(login); set both, or neither to use the Tencent Cloud credential chain.",
        {"login": None},
        error=CREDS,
        mps_task_id="t",
    ),
    connection_row(
        "conn_token_without_keys",
        op,
        "Connection 'bad_conn_token_without_keys' has a token extra but no SecretId (login) and SecretKey "
        "(password); a token is only valid together with the temporary SecretId and SecretKey it was "
        "issued with.",
        {"login": None, "password": None, "extra": {"token": "temporary-token"}},
        error=CREDS,
    ),
    connection_row(
        "conn_secret_key_with_a_line_break",
        transfer,
        "The SecretKey (password) of connection 'bad_conn_secret_key_with_a_line_break' contains "
        "whitespace; paste it again without spaces or line breaks.",
        {"password": "pasted-key\n"},
        error=CREDS,
    ),
]
BAD_INPUTS = [*RUN_ROWS, *PARSE_ROWS]


def _connection_json(emulator: EmulatorHandle, row: BadInput) -> str:
    connection = json.loads(emulator.airflow_connection())
    changes = dict(row.connection or {})
    connection["extra"].update(changes.pop("extra", {}))
    connection.update(changes)
    return json.dumps(connection)


@dataclass
class TableRun:
    states: dict[tuple[str, int], tuple[str | None, int]]
    failures: dict[str, list[tuple[int, str, str]]]
    requests: list[dict[str, Any]]


@pytest.fixture(scope="module")
def table_run(airflow_home, mps_emulator_server) -> TableRun:
    """Run every run-time row as one task of one DAG, once; keep what Airflow and the emulator saw."""
    emulator = EmulatorHandle.from_server(mps_emulator_server)
    mps_emulator_server.backend.reset()
    recorder = FailureRecorder()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(CONNECTION_ENV, emulator.airflow_connection())
        for row in RUN_ROWS:
            if row.connection is not None:
                monkeypatch.setenv(f"AIRFLOW_CONN_{row.conn_id.upper()}", _connection_json(emulator, row))
        with DAG(
            DAG_ID,
            schedule=None,
            start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
            params=PARAMS,
            default_args={"retries": RETRIES, "retry_delay": datetime.timedelta(0)},
        ) as dag:

            @task
            def a_dict() -> dict[str, str]:
                return {"not": "a string"}

            @task
            def returns_nothing() -> None:
                return None

            upstream = Upstream(a_dict=a_dict(), nothing=returns_nothing())
            for row in RUN_ROWS:
                made = row.make(upstream)
                if row.id == "sensor_task_id_rendered_none":
                    upstream.nothing >> made
        with recorder.listening():
            run = run_dag(dag)
    failures: dict[str, list[tuple[int, str, str]]] = {}
    for failure in recorder.failures:
        failures.setdefault(failure.task_id, []).append(
            (failure.try_number, failure.error_type, failure.message)
        )
    return TableRun(
        states=task_states(run.run_id, dag.dag_id),
        failures=failures,
        requests=emulator.requests(),
    )


def _matches(expected: str, message: str) -> bool:
    if expected.startswith("re:"):
        return re.fullmatch(expected[3:], message) is not None
    return expected == message


@pytest.mark.parametrize("row", [row_param(row) for row in RUN_ROWS])
def test_bad_value_at_run_time_fails_the_task_with_one_clear_message(table_run, row):
    failures = table_run.failures.get(row.id, [])
    tries = RETRIES + 1 if row.retried else 1

    assert table_run.states[(row.id, -1)] == ("failed", tries)
    assert [(number, error) for number, error, _ in failures] == [(n, row.error) for n in range(1, tries + 1)]
    assert all(_matches(row.message, message) for _, _, message in failures), failures


def test_nothing_reached_the_service_for_any_bad_input(table_run):
    assert table_run.requests == []
    # The helper tasks ran; every row's task failed.
    assert table_run.states[("a_dict", -1)] == ("success", 1)
    assert {
        state
        for (task_id, _), (state, _) in table_run.states.items()
        if task_id.startswith(("op_", "sensor_", "transfer_", "conn_"))
    } == {"failed"}


def test_the_table_covers_every_class_and_the_connection():
    targets = {row.target for row in BAD_INPUTS}

    assert targets == {"operator", "sensor", "transfer", "connection"}
    assert len(BAD_INPUTS) >= 30
    assert len({row.id for row in BAD_INPUTS}) == len(BAD_INPUTS)
