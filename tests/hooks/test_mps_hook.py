"""MpsHook against the emulator, through the official SDK's real HTTP path (sync and async clients)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from airflow_provider_mps.exceptions import (
    MpsApiError,
    MpsInvalidParameterError,
    MpsTaskFailedError,
    MpsTaskTimeoutError,
)
from airflow_provider_mps.hooks.mps import (
    SUCCESS_STATUSES,
    TERMINAL_STATUSES,
    MpsAigcImageTaskStatus,
    MpsHook,
)
from tests.hooks.conftest import wait_for_requests

TASK_ID = re.compile(r"^\d+-AigcImage-[0-9a-f]{32}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_hook_declares_the_tencentcloud_mps_connection_type():
    assert (MpsHook.conn_name_attr, MpsHook.default_conn_name, MpsHook.conn_type, MpsHook.hook_name) == (
        "mps_conn_id",
        "tencentcloud_mps_default",
        "tencentcloud_mps",
        "Tencent Cloud MPS",
    )


def test_constructing_the_hook_reads_no_connection_and_imports_no_sdk(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT", raising=False)
    hook = MpsHook(region="ap-shanghai")  # the connection does not exist: only first use would fail

    assert (hook.mps_conn_id, hook.region, hook._settings, hook._client) == (
        "tencentcloud_mps_default",
        "ap-shanghai",
        None,
        None,
    )


def test_status_enum_knows_terminal_and_success_statuses():
    assert [s.value for s in MpsAigcImageTaskStatus] == ["WAIT", "RUN", "DONE", "FAIL"]
    assert sorted(TERMINAL_STATUSES) == [MpsAigcImageTaskStatus.DONE, MpsAigcImageTaskStatus.FAIL]
    assert list(SUCCESS_STATUSES) == [MpsAigcImageTaskStatus.DONE]
    assert [MpsAigcImageTaskStatus.is_terminal(s) for s in ("WAIT", "RUN", "DONE", "FAIL", "UNKNOWN")] == [
        False,
        False,
        True,
        True,
        False,
    ]
    assert MpsAigcImageTaskStatus.is_terminal(MpsAigcImageTaskStatus.FAIL) is True


def test_create_sends_every_field_under_its_api_name(mps_conn):
    hook = MpsHook()

    result = hook.submit_aigc_image_task(
        model_name="Hunyuan",
        model_version="3.0",
        prompt="一只猫 in the snow",
        negative_prompt="dogs",
        enhance_prompt=True,
        image_infos=[
            "https://example.com/a.png",
            {"image_url": "https://example.com/b.png", "reference_type": "style"},
        ],
        output_image_count=2,
        extra_parameters={"aspect_ratio": "16:9", "Resolution": "2K", "logo_add": 0, "OutputFormat": "jpeg"},
        additional_parameters={"size": "1024x1024"},
        store_cos_param={"cos_bucket_name": "bucket-1250000000", "CosBucketRegion": "ap-guangzhou"},
        operator="airflow",
    )

    assert set(result) == {"TaskId", "RequestId"}
    assert TASK_ID.match(result["TaskId"])
    assert UUID.match(result["RequestId"])
    [task] = mps_conn.tasks()
    assert task["TaskId"] == result["TaskId"]
    assert task["SecretId"] == mps_conn.secret_id
    assert task["Request"] == {
        "ModelName": "Hunyuan",
        "ModelVersion": "3.0",
        "Prompt": "一只猫 in the snow",
        "NegativePrompt": "dogs",
        "EnhancePrompt": True,
        "ImageInfos": [
            {"ImageUrl": "https://example.com/a.png"},
            {"ImageUrl": "https://example.com/b.png", "ReferenceType": "style"},
        ],
        "OutputImageCount": 2,
        "ExtraParameters": {"AspectRatio": "16:9", "Resolution": "2K", "LogoAdd": 0, "OutputFormat": "jpeg"},
        "AdditionalParameters": '{"size":"1024x1024"}',
        "StoreCosParam": {"CosBucketName": "bucket-1250000000", "CosBucketRegion": "ap-guangzhou"},
        "Operator": "airflow",
    }


def test_create_omits_fields_left_as_none(mps_conn):
    task_id = MpsHook().create_aigc_image_task(prompt="a lighthouse", model_name=None, extra_parameters=None)

    [task] = mps_conn.tasks()
    assert (task["TaskId"], task["Request"]) == (task_id, {"Prompt": "a lighthouse"})


def test_additional_parameters_given_as_a_json_string_are_checked_and_sent_as_one_json_string(mps_conn):
    MpsHook().create_aigc_image_task(prompt="p", additional_parameters='{"size": "512x512"}')

    assert mps_conn.tasks()[0]["Request"]["AdditionalParameters"] == '{"size":"512x512"}'


def test_invalid_field_is_refused_before_anything_is_sent(mps_conn):
    with pytest.raises(MpsInvalidParameterError) as raised:
        MpsHook().create_aigc_image_task(prompt="p", output_image_count=0)

    assert str(raised.value) == "Invalid output_image_count 0: must be a positive integer."
    assert mps_conn.requests() == []


def test_describe_reports_the_lifecycle_and_image_urls(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="a red bicycle")

    first = hook.describe_aigc_image_task(task_id)
    mps_conn.force_status(task_id, "DONE")
    done = hook.describe_aigc_image_task(task_id)

    assert first["Status"] == "WAIT"
    assert (first["TaskId"], first["ImageUrls"]) == (task_id, [])
    assert done == {
        "TaskId": task_id,
        "Status": "DONE",
        "ImageUrls": [f"{mps_conn.endpoint}/images/{task_id}/0.png"],
        "Message": "",
        "RequestId": done["RequestId"],
    }
    assert UUID.match(done["RequestId"])


def test_describe_of_an_unknown_task_raises_the_services_not_found_error(mps_conn):
    with pytest.raises(MpsApiError) as raised:
        MpsHook().describe_aigc_image_task("1-AigcImage-00000000000000000000000000000000")

    error = raised.value
    assert (type(error), error.code, error.action, error.transient) == (
        MpsApiError,
        "ResourceNotFound.TaskNotFound",
        "DescribeAigcImageTask",
        False,
    )
    assert UUID.match(error.request_id)
    assert [r["Action"] for r in mps_conn.requests()] == ["DescribeAigcImageTask"]


@pytest.mark.asyncio
async def test_async_describe_matches_the_sync_describe(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="a paper boat", extra_parameters={"OutputFormat": "jpeg"})
    mps_conn.force_status(task_id, "DONE")

    result = await hook.adescribe_aigc_image_task(task_id)
    await hook.aclose()

    assert result == {
        "TaskId": task_id,
        "Status": "DONE",
        "ImageUrls": [f"{mps_conn.endpoint}/images/{task_id}/0.jpg"],
        "Message": "",
        "RequestId": result["RequestId"],
    }
    assert [r["Action"] for r in mps_conn.requests()] == ["CreateAigcImageTask", "DescribeAigcImageTask"]


@pytest.mark.asyncio
async def test_async_describe_reports_a_failed_task_with_its_message(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="a storm [emulator:fail]")
    mps_conn.force_status(task_id, "FAIL", "The prompt was refused.")

    result = await hook.adescribe_aigc_image_task(task_id)
    await hook.aclose()

    assert (result["Status"], result["ImageUrls"]) == ("FAIL", [])
    assert result["Message"] == "The prompt was refused."


@pytest.mark.asyncio
async def test_async_client_is_built_once_per_event_loop_and_reused(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="p")

    await hook.adescribe_aigc_image_task(task_id)
    client = hook._async_client
    await hook.adescribe_aigc_image_task(task_id)

    assert hook._async_client is client
    await hook.aclose()
    assert hook._async_client is None


def test_async_describe_works_again_in_a_new_event_loop(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="p")

    first = asyncio.run(hook.adescribe_aigc_image_task(task_id))
    second = asyncio.run(hook.adescribe_aigc_image_task(task_id))

    assert (first["TaskId"], second["TaskId"]) == (task_id, task_id)


def test_sync_client_is_built_once_and_reused(mps_conn):
    hook = MpsHook()

    client = hook.get_conn()
    hook.create_aigc_image_task(prompt="p")

    assert hook.get_conn() is client


def test_wait_returns_the_done_describe(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="a quiet harbour")

    result = hook.wait_for_aigc_image_task(task_id, poll_interval=0.1, timeout=30)

    assert (result["TaskId"], result["Status"], result["ImageUrls"]) == (
        task_id,
        "DONE",
        [f"{mps_conn.endpoint}/images/{task_id}/0.png"],
    )


def test_wait_raises_task_failed_with_the_services_message(mps_conn):
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="a storm [emulator:fail]")

    with pytest.raises(MpsTaskFailedError) as raised:
        hook.wait_for_aigc_image_task(task_id, poll_interval=0.1, timeout=30)

    [task] = mps_conn.tasks()
    assert (raised.value.task_id, raised.value.message) == (task_id, task["Message"])
    assert task["Status"] == "FAIL"


def assert_wait_times_out_while_waiting(mps_conn, timeout: float) -> None:
    """Waiting ``timeout`` s (polls 50 ms apart) for a task that waits 600 s fails naming its WAIT status."""
    mps_conn.configure(wait_seconds=600)
    hook = MpsHook()
    task_id = hook.create_aigc_image_task(prompt="p")

    with pytest.raises(MpsTaskTimeoutError) as raised:
        hook.wait_for_aigc_image_task(task_id, poll_interval=0.05, timeout=timeout)

    assert re.fullmatch(
        rf"MPS task {task_id} did not finish before \S+; its last status was WAIT\.", str(raised.value)
    )


def test_wait_raises_timeout_naming_the_task_and_its_last_status(mps_conn):
    assert_wait_times_out_while_waiting(mps_conn, timeout=0.2)


def test_wait_ends_by_its_timeout_when_each_describe_would_take_longer(mps_emulator, emulator_connection):
    # Finding 9 of issue 11: each describe took up to request_timeout, and was retried, so the wait
    # could overrun its timeout by (retry_limit + 1) x request_timeout.
    hook = MpsHook(emulator_connection(extra={"request_timeout": 10}), retry_limit=2, retry_delay=0.01)
    task_id = hook.create_aigc_image_task(prompt="p")
    mps_emulator.configure(latency_seconds={"DescribeAigcImageTask": 3.0})

    started = time.monotonic()
    with pytest.raises(MpsTaskTimeoutError) as raised:
        hook.wait_for_aigc_image_task(task_id, poll_interval=0.1, timeout=1.5)
    elapsed = time.monotonic() - started

    # One describe, given up when the time left ran out instead of after the 10 s request_timeout.
    assert re.fullmatch(
        rf"MPS task {task_id} did not finish before \S+; its last status was unknown\. The last poll "
        r"failed: DescribeAigcImageTask did not answer within the 1\.\d s left\.",
        str(raised.value),
    )
    assert elapsed < 3.0  # the describe's answer (3 s) was not waited for
    assert [r["Action"] for r in wait_for_requests(mps_emulator, 2)] == [
        "CreateAigcImageTask",
        "DescribeAigcImageTask",
    ]


def test_wait_gets_a_describe_in_when_its_deadline_is_nearly_past(mps_conn):
    assert_wait_times_out_while_waiting(mps_conn, timeout=0)

    assert [r["Action"] for r in mps_conn.requests()] == ["CreateAigcImageTask", "DescribeAigcImageTask"]


def test_wait_refuses_a_poll_interval_that_is_not_positive(mps_conn):
    with pytest.raises(MpsInvalidParameterError) as raised:
        MpsHook().wait_for_aigc_image_task("1-AigcImage-x", poll_interval=0)

    assert str(raised.value) == "Invalid poll_interval 0: must be a number of seconds greater than 0."
    assert mps_conn.requests() == []


def test_test_connection_makes_one_read_only_call(mps_conn):
    ok, message = MpsHook().test_connection()

    [request] = mps_conn.requests()
    assert request["Action"] == "DescribeTranscodeTemplates"
    assert (ok, message) == (
        True,
        f"Connection to MPS at {mps_conn.endpoint} succeeded (RequestId {request['RequestId']}).",
    )


def test_test_connection_reports_the_services_error_code(mps_emulator, emulator_connection):
    conn_id = emulator_connection(password="not-the-secret-key")

    ok, message = MpsHook(conn_id).test_connection()

    [request] = mps_emulator.requests()
    assert (ok, request["ErrorCode"]) == (False, "AuthFailure.SignatureFailure")
    assert message.startswith(
        f"Connection to MPS at {mps_emulator.endpoint} failed: DescribeTranscodeTemplates failed with "
        "AuthFailure.SignatureFailure: "
    )
    assert message.endswith(f"(RequestId: {request['RequestId']})")


def test_test_connection_reports_a_missing_connection(monkeypatch):
    ok, message = MpsHook("mps_missing").test_connection()

    assert (ok, message) == (
        False,
        "Connection to MPS at the configured endpoint failed: The conn_id `mps_missing` isn't defined",
    )


def test_rate_limit_key_names_secret_id_and_endpoint(mps_conn):
    assert MpsHook().rate_limit_key == f"{mps_conn.secret_id}@{mps_conn.endpoint}"
    assert mps_conn.requests() == []


def test_region_argument_overrides_the_connection_region(mps_conn):
    hook = MpsHook(region="ap-shanghai")

    hook.create_aigc_image_task(prompt="p")

    assert (hook.settings.region, hook.get_conn().region) == ("ap-shanghai", "ap-shanghai")


def test_airflow_connection_test_button_path_reaches_the_hooks_test_connection(mps_emulator, monkeypatch):
    # What the Test button's API does on every line: an unsaved Connection, exported as an
    # AIRFLOW_CONN_ variable for the hook to find, then Connection.test_connection().
    from airflow.models import Connection

    conn = Connection(
        conn_id="mps_from_the_form",
        conn_type="tencentcloud_mps",
        login=mps_emulator.secret_id,
        password=mps_emulator.secret_key,
        extra=json.dumps({"endpoint": mps_emulator.endpoint}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_MPS_FROM_THE_FORM", conn.get_uri())

    ok, message = conn.test_connection()

    [request] = mps_emulator.requests()
    assert (ok, message) == (
        True,
        f"Connection to MPS at {mps_emulator.endpoint} succeeded (RequestId {request['RequestId']}).",
    )


@pytest.mark.asyncio
async def test_hooks_with_the_same_settings_share_one_async_client_until_the_last_releases_it(
    emulator_connection,
):
    from airflow_provider_mps.hooks import _shared_async_clients

    loop = asyncio.get_running_loop()
    first, second = MpsHook(emulator_connection("mps_a")), MpsHook(emulator_connection("mps_b"))
    task_id = first.create_aigc_image_task(prompt="p")

    await first.adescribe_aigc_image_task(task_id)
    await second.adescribe_aigc_image_task(task_id)
    shared = first._async_client

    assert (second._async_client is shared, _shared_async_clients.count(loop)) == (True, 1)
    await first.aclose()
    # The other hook still uses the client: it stays open and keeps working.
    assert (shared.http_client.is_closed, _shared_async_clients.count(loop)) == (False, 1)
    assert (await second.adescribe_aigc_image_task(task_id))["TaskId"] == task_id
    await second.aclose()
    assert (shared.http_client.is_closed, _shared_async_clients.count(loop)) == (True, 0)


@pytest.mark.asyncio
async def test_hooks_with_other_credentials_or_region_get_their_own_async_client(
    emulator_connection, mps_emulator
):
    from airflow_provider_mps.hooks import _shared_async_clients

    base = MpsHook(emulator_connection("mps_base"))
    other_region = MpsHook(emulator_connection("mps_base"), region="ap-beijing")
    other_key = MpsHook(emulator_connection("mps_other_key", password="another-secret-key"))
    hooks = [base, other_region, other_key]

    clients = [await hook.aget_conn() for hook in hooks]

    assert len({id(client) for client in clients}) == 3
    assert [(client.region, client.credential.secret_key) for client in clients] == [
        ("ap-guangzhou", mps_emulator.secret_key),
        ("ap-beijing", mps_emulator.secret_key),
        ("ap-guangzhou", "another-secret-key"),
    ]
    for hook in hooks:
        await hook.aclose()
    assert _shared_async_clients.count(asyncio.get_running_loop()) == 0
