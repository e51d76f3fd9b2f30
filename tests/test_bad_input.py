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
"""

from __future__ import annotations

import datetime
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    BaseSensorOperator,
    get_listener_manager,
    hookimpl,
    task,
)

from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV, EmulatorHandle
from airflow_provider_mps.exceptions import MpsInvalidParameterError
from airflow_provider_mps.operators.mps import MpsCreateAigcImageTaskOperator
from airflow_provider_mps.sensors.mps import MpsAigcImageTaskSensor
from airflow_provider_mps.transfers.mps_to_object_storage import MpsAigcImagesToObjectStorageOperator
from tests.operators._airflow_records import task_states
from tests.operators._dag_runs import run_dag

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DAG_ID = "bad_input_table"


def _sensor_argument_error() -> str:
    """What Airflow's own check of sensor arguments raises: AirflowException to 3.1, ValueError on 3.3."""
    try:
        BaseSensorOperator(task_id="probe", poke_interval=-1)
    except Exception as error:
        return type(error).__name__
    raise AssertionError("Airflow accepted a negative poke_interval.")


SENSOR_ARGUMENT_ERROR = _sensor_argument_error()
RETRIES = 2
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
REGION_RULE = (
    "must be a Tencent Cloud region name in lower case, such as ap-guangzhou, na-siliconvalley or "
    "ap-shanghai-fsi."
)


@dataclass(frozen=True)
class Upstream:
    """XComArgs of the DAG's helper tasks, for rows whose bad value comes from an upstream task."""

    a_dict: Any = None
    nothing: Any = None


@dataclass(frozen=True)
class BadInput:
    """
    One bad input.

    :param id: the row's name, also its Airflow task id.
    :param target: what is given the bad value: operator, sensor, transfer or connection.
    :param at: ``parse`` (refused when the operator is built) or ``run`` (refused when it runs).
    :param make: builds the Airflow task (inside the DAG) from the upstream XComArgs.
    :param error: the exception class name.
    :param message: the exact message; a ``re:`` prefix makes it a full-match regex.
    :param retried: Airflow retries the task (only a missing connection); before Airflow 3.3 a create
        operator's retry then fails with the operator's refusal to create again.
    :param connection: fields of the row's own connection ``bad_<id>`` (the emulator's plus these).
    :param xfail: why the row fails today, if it does.
    """

    id: str
    target: str
    at: str
    make: Callable[[Upstream], Any]
    error: str
    message: str
    retried: bool = False
    connection: dict[str, Any] | None = None
    xfail: str | None = None

    @property
    def conn_id(self) -> str:
        return f"bad_{self.id}"


def op(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    """A create operator named ``row_id`` (kwargs may be functions of the upstream XComArgs)."""

    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("prompt", "a lighthouse")
        return MpsCreateAigcImageTaskOperator(task_id=row_id, **values)

    return make


def sensor(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("poke_interval", 0.1)
        values.setdefault("timeout", 30)
        return MpsAigcImageTaskSensor(task_id=row_id, **values)

    return make


def transfer(row_id: str, **kwargs: Any) -> Callable[[Upstream], Any]:
    def make(up: Upstream) -> Any:
        values = {key: value(up) if callable(value) else value for key, value in kwargs.items()}
        values.setdefault("mps_task_id", "1-AigcImage-0123456789abcdef0123456789abcdef")
        values.setdefault("destination", "file:///tmp/mps-bad-input-never-written")
        return MpsAigcImagesToObjectStorageOperator(task_id=row_id, **values)

    return make


def invalid(field_: str, shown: str, rule: str) -> str:
    return f"Invalid {field_} {shown}: {rule}"


def conn_message(row_id: str, extra: str, shown: str, rule: str) -> str:
    return invalid(f"extra '{extra}' of connection 'bad_{row_id}'", shown, rule)


LONG_ASCII_SHOWN = "'" + "x" * 76 + "..."
LONG_CJK_SHOWN = "'" + "画" * 76 + "..."
BAD = "MpsInvalidParameterError"
CREDS = "MpsConnectionConfigError"

BAD_INPUTS: list[BadInput] = [
    # -- operator: values from templates and XComs, refused when the task runs ---------------
    BadInput(
        "op_empty_prompt_and_no_images",
        "operator",
        "run",
        op("op_empty_prompt_and_no_images", prompt="{{ params.blank }}"),
        BAD,
        invalid("prompt", "None", "a prompt or at least one reference image (image_infos) is required."),
    ),
    BadInput(
        "op_prompt_of_spaces",
        "operator",
        "run",
        op("op_prompt_of_spaces", prompt="{{ params.spaces }}"),
        BAD,
        invalid("prompt", "None", "a prompt or at least one reference image (image_infos) is required."),
    ),
    BadInput(
        "op_prompt_over_1000_characters",
        "operator",
        "run",
        op("op_prompt_over_1000_characters", prompt="{{ params.long_ascii }}"),
        BAD,
        invalid("prompt", LONG_ASCII_SHOWN, "must be at most 1000 characters long, got 1001."),
    ),
    BadInput(
        "op_multibyte_prompt_over_1000_characters",
        "operator",
        "run",
        op("op_multibyte_prompt_over_1000_characters", prompt="{{ params.long_cjk }}"),
        BAD,
        invalid("prompt", LONG_CJK_SHOWN, "must be at most 1000 characters long, got 1001."),
    ),
    BadInput(
        "op_prompt_is_a_dict_from_xcom",
        "operator",
        "run",
        op("op_prompt_is_a_dict_from_xcom", prompt=lambda up: up.a_dict),
        BAD,
        invalid("prompt", "{'not': 'a string'}", "must be a string, got dict."),
    ),
    BadInput(
        "op_too_many_images_for_the_model",
        "operator",
        "run",
        op(
            "op_too_many_images_for_the_model",
            model_name="GEM",
            image_infos="{{ params.four_urls | tojson }}",
        ),
        BAD,
        invalid(
            "image_infos",
            "['https://example.com/0.png', 'https://example.com/1.png', 'https://example.c...",
            "may hold at most 3 reference images for GEM, got 4.",
        ),
    ),
    BadInput(
        "op_non_http_image_url",
        "operator",
        "run",
        op("op_non_http_image_url", image_infos="{{ params.ftp_url }}"),
        BAD,
        invalid(
            "image_infos[0]",
            "'ftp://example.com/reference.png'",
            "must be an http(s) URL of a reference image.",
        ),
    ),
    BadInput(
        "op_unsupported_image_format",
        "operator",
        "run",
        op("op_unsupported_image_format", image_infos="{{ params.gif_url }}"),
        BAD,
        invalid(
            "image_infos[0]",
            "'https://example.com/reference.gif'",
            "must name a jpeg, png or webp image; the URL names a .gif file.",
        ),
    ),
    BadInput(
        "op_additional_parameters_not_json",
        "operator",
        "run",
        op("op_additional_parameters_not_json", additional_parameters="{{ params.broken_json }}"),
        BAD,
        invalid(
            "additional_parameters",
            "'{\"size\": '",
            "must be a JSON object (dict) or a JSON string of one, got text that is not JSON.",
        ),
    ),
    BadInput(
        "op_additional_parameters_json_array",
        "operator",
        "run",
        op("op_additional_parameters_json_array", additional_parameters="{{ params.json_array }}"),
        BAD,
        invalid("additional_parameters", "[1, 2]", "must be a JSON object (dict), got list."),
    ),
    BadInput(
        "op_zero_images_from_template",
        "operator",
        "run",
        op("op_zero_images_from_template", output_image_count="{{ params.zero }}"),
        BAD,
        invalid("output_image_count", "'0'", "must be a positive integer."),
    ),
    BadInput(
        "op_enhance_prompt_not_a_boolean",
        "operator",
        "run",
        op("op_enhance_prompt_not_a_boolean", enhance_prompt="{{ params.maybe }}"),
        BAD,
        invalid("enhance_prompt", "'maybe'", "must be a boolean (true or false)."),
    ),
    BadInput(
        "op_resolution_the_model_lacks",
        "operator",
        "run",
        op(
            "op_resolution_the_model_lacks",
            model_name="GEM",
            extra_parameters="{{ params.resolution_8k | tojson }}",
            strict_validation=True,
        ),
        BAD,
        invalid("extra_parameters.Resolution", "'8K'", "must be one of 720P, 1080P, 2K, 4K for GEM."),
    ),
    BadInput(
        "op_region_override_not_a_region",
        "operator",
        "run",
        op("op_region_override_not_a_region", region="{{ params.bad_region }}"),
        BAD,
        invalid("region", "'AP_GUANGZHOU'", REGION_RULE),
    ),
    # -- operator: literal values, refused when the DAG file is parsed -------------------------
    BadInput(
        "op_rate_limit_zero",
        "operator",
        "parse",
        op("op_rate_limit_zero", rate_limit=0),
        BAD,
        invalid("rate_limit", "0", "must be a number of requests per second greater than 0."),
    ),
    BadInput(
        "op_poll_interval_zero",
        "operator",
        "parse",
        op("op_poll_interval_zero", poll_interval=0),
        BAD,
        invalid("poll_interval", "0", "must be a number of seconds greater than 0."),
    ),
    BadInput(
        "op_poll_interval_negative",
        "operator",
        "parse",
        op("op_poll_interval_negative", poll_interval=-5),
        BAD,
        invalid("poll_interval", "-5", "must be a number of seconds greater than 0."),
    ),
    BadInput(
        "op_timeout_zero",
        "operator",
        "parse",
        op("op_timeout_zero", timeout=0),
        BAD,
        invalid("timeout", "0", "must be a number of seconds greater than 0."),
    ),
    BadInput(
        "op_timeout_negative",
        "operator",
        "parse",
        op("op_timeout_negative", timeout=-1.5),
        BAD,
        invalid("timeout", "-1.5", "must be a number of seconds greater than 0."),
    ),
    BadInput(
        "op_literal_blank_prompt",
        "operator",
        "parse",
        op("op_literal_blank_prompt", prompt="  "),
        BAD,
        invalid("prompt", "None", "a prompt or at least one reference image (image_infos) is required."),
    ),
    BadInput(
        "op_cos_bucket_without_region",
        "operator",
        "parse",
        op("op_cos_bucket_without_region", store_cos_param={"CosBucketName": "images-1250000000"}),
        BAD,
        invalid(
            "store_cos_param",
            "{'CosBucketName': 'images-1250000000'}",
            "needs CosBucketName and CosBucketRegion together; CosBucketRegion is missing.",
        ),
    ),
    BadInput(
        "op_logo_add_not_0_or_1",
        "operator",
        "parse",
        op("op_logo_add_not_0_or_1", extra_parameters={"LogoAdd": 2}),
        BAD,
        invalid("extra_parameters.LogoAdd", "2", "must be 0 (no watermark) or 1 (add the watermark)."),
    ),
    BadInput(
        "op_unknown_extra_parameter",
        "operator",
        "parse",
        op("op_unknown_extra_parameter", extra_parameters={"Size": "1K"}),
        BAD,
        invalid(
            "extra_parameters",
            "{'Size': '1K'}",
            "has the unknown key 'Size'; the known keys are AspectRatio, Resolution, LogoAdd, OutputFormat.",
        ),
    ),
    BadInput(
        "op_size_out_of_range_for_the_model",
        "operator",
        "parse",
        op(
            "op_size_out_of_range_for_the_model",
            model_name="Hunyuan",
            model_version="3.0",
            additional_parameters={"size": "4096x4096"},
        ),
        BAD,
        invalid(
            "additional_parameters.size",
            "'4096x4096'",
            "must have width and height between 512 and 2048 pixels for Hunyuan 3.0.",
        ),
    ),
    BadInput(
        "op_aspect_ratio_the_model_lacks",
        "operator",
        "parse",
        op(
            "op_aspect_ratio_the_model_lacks",
            model_name="Kling",
            extra_parameters={"AspectRatio": "5:4"},
            strict_validation=True,
        ),
        BAD,
        invalid(
            "extra_parameters.AspectRatio",
            "'5:4'",
            "must be one of 16:9, 9:16, 1:1, 4:3, 3:4, 3:2, 2:3, 21:9 for Kling.",
        ),
    ),
    BadInput(
        "op_image_info_without_url",
        "operator",
        "parse",
        op("op_image_info_without_url", image_infos=[{"ReferenceType": "style"}]),
        BAD,
        invalid("image_infos[0]", "{'ReferenceType': 'style'}", "needs an ImageUrl."),
    ),
    # -- sensor ---------------------------------------------------------------------------------
    BadInput(
        "sensor_task_id_rendered_none",
        "sensor",
        "run",
        sensor("sensor_task_id_rendered_none", mps_task_id="{{ ti.xcom_pull(task_ids='returns_nothing') }}"),
        BAD,
        invalid(
            "mps_task_id", "'None'", "rendered to 'None'; the XCom or value it was templated from is missing."
        ),
    ),
    BadInput(
        "sensor_blank_task_id",
        "sensor",
        "run",
        sensor("sensor_blank_task_id", mps_task_id="{{ params.spaces }}"),
        BAD,
        invalid("mps_task_id", "'   '", "must be a non-empty MPS TaskId, not blank."),
    ),
    BadInput(
        "sensor_deferrable_empty_task_id",
        "sensor",
        "run",
        sensor("sensor_deferrable_empty_task_id", mps_task_id="{{ params.blank }}", deferrable=True),
        BAD,
        invalid("mps_task_id", "''", "must be a non-empty MPS TaskId, not blank."),
    ),
    BadInput(
        "sensor_task_id_is_a_dict",
        "sensor",
        "run",
        sensor("sensor_task_id_is_a_dict", mps_task_id=lambda up: up.a_dict),
        BAD,
        invalid("mps_task_id", "{'not': 'a string'}", "must be an MPS TaskId string, not a dict."),
    ),
    BadInput(
        "sensor_negative_poke_interval",
        "sensor",
        "parse",
        sensor("sensor_negative_poke_interval", mps_task_id="t", poke_interval=-1),
        SENSOR_ARGUMENT_ERROR,
        "Operator arg `poke_interval` must be timedelta object or a non-negative number",
    ),
    BadInput(
        "sensor_negative_timeout",
        "sensor",
        "parse",
        sensor("sensor_negative_timeout", mps_task_id="t", timeout=-1),
        SENSOR_ARGUMENT_ERROR,
        "Operator arg `timeout` must be timedelta object or a non-negative number",
    ),
    # -- transfer -------------------------------------------------------------------------------
    BadInput(
        "transfer_blank_task_id",
        "transfer",
        "run",
        transfer("transfer_blank_task_id", mps_task_id="{{ params.blank }}"),
        BAD,
        invalid("mps_task_id", "''", "must be a non-empty MPS TaskId, not blank."),
    ),
    BadInput(
        "transfer_empty_destination",
        "transfer",
        "run",
        transfer("transfer_empty_destination", destination="{{ params.blank }}"),
        BAD,
        invalid("destination", "''", "must be an object storage URL such as s3://bucket/path."),
    ),
    BadInput(
        "transfer_zero_poll_interval",
        "transfer",
        "parse",
        transfer("transfer_zero_poll_interval", poll_interval=0),
        BAD,
        invalid("poll_interval", "0", "must be a number of seconds greater than 0."),
    ),
    BadInput(
        "transfer_negative_timeout",
        "transfer",
        "parse",
        transfer("transfer_negative_timeout", timeout=-1),
        BAD,
        invalid("timeout", "-1", "must be a number of seconds greater than 0."),
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
    BadInput(
        "conn_endpoint_without_scheme",
        "connection",
        "run",
        op("conn_endpoint_without_scheme", mps_conn_id="bad_conn_endpoint_without_scheme"),
        BAD,
        conn_message("conn_endpoint_without_scheme", "endpoint", "'mps.tencentcloudapi.com'", ENDPOINT_RULE),
        connection={"extra": {"endpoint": "mps.tencentcloudapi.com"}},
    ),
    BadInput(
        "conn_endpoint_with_a_path",
        "connection",
        "run",
        sensor("conn_endpoint_with_a_path", mps_task_id="t", mps_conn_id="bad_conn_endpoint_with_a_path"),
        BAD,
        conn_message("conn_endpoint_with_a_path", "endpoint", "'http://127.0.0.1:9100/v3'", ENDPOINT_RULE),
        connection={"extra": {"endpoint": "http://127.0.0.1:9100/v3"}},
    ),
    BadInput(
        "conn_endpoint_port_out_of_range",
        "connection",
        "run",
        transfer("conn_endpoint_port_out_of_range", mps_conn_id="bad_conn_endpoint_port_out_of_range"),
        BAD,
        conn_message(
            "conn_endpoint_port_out_of_range", "endpoint", "'http://127.0.0.1:99999'", ENDPOINT_RULE
        ),
        connection={"extra": {"endpoint": "http://127.0.0.1:99999"}},
    ),
    BadInput(
        "conn_region_not_a_region",
        "connection",
        "run",
        op("conn_region_not_a_region", mps_conn_id="bad_conn_region_not_a_region"),
        BAD,
        conn_message("conn_region_not_a_region", "region", "'Guangzhou'", REGION_RULE),
        connection={"extra": {"region": "Guangzhou"}},
    ),
    BadInput(
        "conn_request_timeout_zero",
        "connection",
        "run",
        op("conn_request_timeout_zero", mps_conn_id="bad_conn_request_timeout_zero"),
        BAD,
        conn_message(
            "conn_request_timeout_zero",
            "request_timeout",
            "0",
            "must be a number of seconds greater than 0, such as 60.",
        ),
        connection={"extra": {"request_timeout": 0}},
    ),
    BadInput(
        "conn_unknown_language",
        "connection",
        "run",
        op("conn_unknown_language", mps_conn_id="bad_conn_unknown_language"),
        BAD,
        conn_message("conn_unknown_language", "language", "'fr-FR'", "must be en-US or zh-CN."),
        connection={"extra": {"language": "fr-FR"}},
    ),
    BadInput(
        "conn_proxy_without_scheme",
        "connection",
        "run",
        op("conn_proxy_without_scheme", mps_conn_id="bad_conn_proxy_without_scheme"),
        BAD,
        conn_message(
            "conn_proxy_without_scheme",
            "proxy",
            "'<redacted>'",
            "must be a proxy URL with a scheme and a host, such as http://proxy.example.com:3128.",
        ),
        connection={"extra": {"proxy": "user:pa55@proxy.example.com"}},
    ),
    BadInput(
        "conn_secret_id_without_secret_key",
        "connection",
        "run",
        op("conn_secret_id_without_secret_key", mps_conn_id="bad_conn_secret_id_without_secret_key"),
        CREDS,
        "Connection 'bad_conn_secret_id_without_secret_key' has a SecretId (login) but no SecretKey "
        "(password); set both, or neither to use the Tencent Cloud credential chain.",
        connection={"password": None},
    ),
    BadInput(
        "conn_secret_key_without_secret_id",
        "connection",
        "run",
        sensor(
            "conn_secret_key_without_secret_id",
            mps_task_id="t",
            mps_conn_id="bad_conn_secret_key_without_secret_id",
        ),
        CREDS,
        "Connection 'bad_conn_secret_key_without_secret_id' has a SecretKey (password) but no SecretId "
        "(login); set both, or neither to use the Tencent Cloud credential chain.",
        connection={"login": None},
    ),
    BadInput(
        "conn_token_without_keys",
        "connection",
        "run",
        op("conn_token_without_keys", mps_conn_id="bad_conn_token_without_keys"),
        CREDS,
        "Connection 'bad_conn_token_without_keys' has a token extra but no SecretId (login) and SecretKey "
        "(password); a token is only valid together with the temporary SecretId and SecretKey it was "
        "issued with.",
        connection={"login": None, "password": None, "extra": {"token": "temporary-token"}},
    ),
    BadInput(
        "conn_secret_key_with_a_line_break",
        "connection",
        "run",
        transfer("conn_secret_key_with_a_line_break", mps_conn_id="bad_conn_secret_key_with_a_line_break"),
        CREDS,
        "The SecretKey (password) of connection 'bad_conn_secret_key_with_a_line_break' contains "
        "whitespace; paste it again without spaces or line breaks.",
        connection={"password": "pasted-key\n"},
    ),
]
RUN_ROWS = [row for row in BAD_INPUTS if row.at == "run"]


def _connection_json(emulator: EmulatorHandle, row: BadInput) -> str:
    connection = json.loads(emulator.airflow_connection())
    changes = dict(row.connection or {})
    connection["extra"].update(changes.pop("extra", {}))
    connection.update(changes)
    return json.dumps(connection)


@dataclass(frozen=True)
class TryFailure:
    """One failed try, as the task's failure or retry callback saw it."""

    task_id: str
    try_number: int
    error_type: str
    message: str


class FailureRecorder:
    """
    A listener recording each failed try's exception (``dag.test()`` runs listeners in-process).

    Airflow's ``on_task_instance_failed`` listener receives the exception on every supported line,
    where a failure callback's context lacks it under ``dag.test()`` before Airflow 3.2.
    """

    def __init__(self) -> None:
        self.failures: list[TryFailure] = []

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        self.failures.append(
            TryFailure(task_instance.task_id, task_instance.try_number, type(error).__name__, str(error))
        )

    @contextmanager
    def listening(self) -> Iterator[FailureRecorder]:
        """Record while the block runs."""
        manager = get_listener_manager()
        manager.add_listener(self)
        try:
            yield self
        finally:
            manager.pm.unregister(self)


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


def _param(row: BadInput) -> Any:
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=row.xfail)] if row.xfail else []
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(row) for row in BAD_INPUTS if row.at == "parse"])
def test_literal_bad_value_is_refused_when_the_dag_is_parsed(row):
    dag = DAG(f"bad_input_parse_{row.id}", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"))
    refusals = (MpsInvalidParameterError, ValueError, AirflowException)
    with dag, pytest.raises(refusals, match=re.escape(row.message)) as raised:
        row.make(Upstream())

    assert (type(raised.value).__name__, str(raised.value)) == (row.error, row.message)


@pytest.mark.parametrize("row", [_param(row) for row in RUN_ROWS])
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


@pytest.mark.parametrize("destination", ["parent_is_a_file", "unknown_scheme"])
def test_unusable_destination_is_refused_before_the_service_is_polled(
    airflow_home, mps_conn, tmp_path, destination
):
    from airflow_provider_mps.hooks.mps import MpsHook

    mps_conn.configure(wait_seconds=0, run_seconds=0)
    mps_task_id = MpsHook().create_aigc_image_task(prompt="a lighthouse")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    url = {"parent_is_a_file": f"file://{a_file}/images", "unknown_scheme": "nosuch://bucket/images"}[
        destination
    ]
    recorder = FailureRecorder()
    with DAG(
        f"bad_input_destination_{destination}",
        schedule=None,
        start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
        default_args={"retries": RETRIES, "retry_delay": datetime.timedelta(0)},
    ) as dag:
        MpsAigcImagesToObjectStorageOperator(task_id="save", mps_task_id=mps_task_id, destination=url)

    with recorder.listening():
        run = run_dag(dag)

    assert task_states(run.run_id, dag.dag_id) == {("save", -1): ("failed", 1)}
    [failure] = recorder.failures
    shown = str(MpsInvalidParameterError("destination", "", url))[: -len(": ")]
    if destination == "unknown_scheme":
        # Airflow's own reason closes the message: its wording differs by Airflow line.
        from tests.transfers.test_mps_to_object_storage import unknown_scheme_reason

        reason = unknown_scheme_reason(url)
        assert (failure.error_type, failure.message) == (
            "MpsInvalidParameterError",
            f"{shown}: must be an object storage URL whose scheme has a filesystem in Airflow (file://, "
            f"or s3://, gs://, ... with their provider installed); {reason}.",
        )
    else:
        # The folder below the destination holds the DAG id, the run id and the TaskId.
        assert failure.error_type == "MpsInvalidParameterError"
        assert re.fullmatch(
            re.escape(
                f"{shown}: must be a local folder that can be created and written to; creating "
                f"{a_file}/images/bad_input_destination_parent_is_a_file/"
            )
            + r"[^/]+/"
            + re.escape(f"{mps_task_id} failed: Not a directory."),
            failure.message,
        ), failure.message
    # The task was created by the test itself; the transfer never polled it.
    assert [request["Action"] for request in mps_conn.requests()] == ["CreateAigcImageTask"]
