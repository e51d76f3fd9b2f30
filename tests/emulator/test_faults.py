"""Fault-injection knobs, seen through the official SDK's real HTTP path."""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request

import httpx
import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from tests.emulator.sdk import async_client, create, describe, describe_request, sync_client

pytestmark = pytest.mark.reliability


def sdk_error(call) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


def logged(handle) -> list[tuple[str, str | None, str | None]]:
    return [(r["Action"], r["ErrorCode"], r["Fault"]) for r in handle.requests()]


def wait_for_a_request(handle) -> None:
    """Let a delayed call the client gave up on finish (and be logged) inside this test, for 10 s at most."""
    deadline = time.monotonic() + 10
    while not handle.requests() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_error_rate_answers_every_call_with_the_error_code(mps_emulator):
    mps_emulator.configure(error_rate=1.0, error_code="InternalError")

    error = sdk_error(lambda: create(sync_client(mps_emulator), Prompt="a cat"))

    assert (error.code, error.message) == ("InternalError", "Injected by the emulator: InternalError.")
    assert error.requestId == mps_emulator.requests()[0]["RequestId"]
    assert logged(mps_emulator) == [("CreateAigcImageTask", "InternalError", "error")]
    assert mps_emulator.tasks() == []


def test_error_burst_scoped_to_create_fails_the_next_creates_only(mps_emulator):
    mps_emulator.configure(
        error_burst={"CreateAigcImageTask": 2}, error_code={"CreateAigcImageTask": "RequestLimitExceeded"}
    )
    client = sync_client(mps_emulator)

    codes = [sdk_error(lambda: create(client, Prompt="a cat")).code for _ in range(2)]
    task_id = create(client, Prompt="a cat")
    status = describe(client, task_id)["Status"]

    assert (codes, status) == (["RequestLimitExceeded", "RequestLimitExceeded"], "WAIT")
    assert mps_emulator.config()["error_burst"] == {"CreateAigcImageTask": 0}
    assert logged(mps_emulator) == [
        ("CreateAigcImageTask", "RequestLimitExceeded", "error"),
        ("CreateAigcImageTask", "RequestLimitExceeded", "error"),
        ("CreateAigcImageTask", None, None),
        ("DescribeAigcImageTask", None, None),
    ]


def test_error_rate_scoped_to_describe_leaves_create_alone(mps_emulator):
    mps_emulator.configure(error_rate={"DescribeAigcImageTask": 1.0})
    client = sync_client(mps_emulator)

    task_id = create(client, Prompt="a cat")
    error = sdk_error(lambda: describe(client, task_id))

    assert error.code == "InternalError"
    assert [t["TaskId"] for t in mps_emulator.tasks()] == [task_id]


def test_drop_before_read_is_a_connection_error_for_the_sync_sdk_and_creates_nothing(mps_emulator):
    mps_emulator.configure(drop_before_read_rate=1.0)

    error = sdk_error(lambda: create(sync_client(mps_emulator), Prompt="a cat"))

    assert error.code == "ClientNetworkError"
    assert "Connection aborted" in error.message
    assert error.requestId is None
    assert mps_emulator.tasks() == []
    assert logged(mps_emulator) == [("CreateAigcImageTask", None, "drop_before_read")]


@pytest.mark.asyncio
async def test_drop_before_read_is_a_transport_error_for_the_async_sdk(mps_emulator):
    mps_emulator.configure(drop_before_read_rate=1.0)

    with pytest.raises(httpx.TransportError) as info:
        await async_client(mps_emulator).DescribeAigcImageTask(describe_request("1-AigcImage-x"))

    assert isinstance(info.value, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError))


def test_drop_after_create_creates_the_task_but_loses_the_response(mps_emulator):
    mps_emulator.configure(drop_after_create_rate={"CreateAigcImageTask": 1.0})

    error = sdk_error(lambda: create(sync_client(mps_emulator), Prompt="a lost cat"))

    assert error.code == "ClientNetworkError"
    assert "Connection aborted" in error.message
    [task] = mps_emulator.tasks()
    assert task["Request"] == {"Prompt": "a lost cat"}
    assert logged(mps_emulator) == [("CreateAigcImageTask", None, "drop_after_create")]


def test_malformed_body_is_200_application_json_that_does_not_parse(mps_emulator):
    mps_emulator.configure(malformed_body_rate={"CreateAigcImageTask": 1.0})
    client = sync_client(mps_emulator)

    with pytest.raises(json.JSONDecodeError):
        client.call_json("CreateAigcImageTask", {"Prompt": "a cat"})
    error = sdk_error(lambda: create(client, Prompt="a cat"))  # the typed method wraps the error

    assert error.code == "JSONDecodeError"
    assert len(mps_emulator.tasks()) == 2
    assert logged(mps_emulator) == [("CreateAigcImageTask", None, "malformed_body")] * 2


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("knob", "raised"),
    [("drop_after_create_rate", httpx.TransportError), ("malformed_body_rate", json.JSONDecodeError)],
    ids=["drop-after-create-is-a-transport-error", "malformed-body-is-a-json-error"],
)
async def test_describe_fault_escapes_the_async_sdk(mps_emulator, knob, raised):
    task_id = create(sync_client(mps_emulator), Prompt="a cat")
    mps_emulator.configure(**{knob: 1.0})

    with pytest.raises(raised):
        await async_client(mps_emulator).DescribeAigcImageTask(describe_request(task_id))


def test_html_5xx_is_a_server_network_error_and_creates_nothing(mps_emulator):
    mps_emulator.configure(html_5xx_rate=1.0)

    error = sdk_error(lambda: create(sync_client(mps_emulator), Prompt="a cat"))

    assert error.code == "ServerNetworkError"
    assert "502 Bad Gateway" in str(error.message)
    assert mps_emulator.tasks() == []
    assert logged(mps_emulator) == [("CreateAigcImageTask", None, "html_5xx")]


def test_latency_longer_than_the_client_timeout_is_a_read_timeout(mps_emulator):
    mps_emulator.configure(latency_seconds=1.5)
    client = sync_client(mps_emulator)
    client.request.conn.timeout = 0.3

    error = sdk_error(lambda: client.call_json("DescribeTranscodeTemplates", {"Limit": 1}))

    assert error.code == "ClientNetworkError"
    assert "Read timed out" in error.message
    wait_for_a_request(mps_emulator)
    assert logged(mps_emulator) == [("DescribeTranscodeTemplates", None, "client_disconnected")]


def test_create_slower_than_the_client_timeout_still_creates_the_task(mps_emulator):
    mps_emulator.configure(latency_seconds={"CreateAigcImageTask": 1.0})
    client = sync_client(mps_emulator)
    client.request.conn.timeout = 0.3

    error = sdk_error(lambda: create(client, Prompt="a slow cat"))

    assert (error.code, "Read timed out" in error.message) == ("ClientNetworkError", True)
    wait_for_a_request(mps_emulator)
    assert [t["Request"] for t in mps_emulator.tasks()] == [{"Prompt": "a slow cat"}]
    assert logged(mps_emulator) == [("CreateAigcImageTask", None, "client_disconnected")]


def test_seeded_fault_draws_repeat_after_reset(mps_emulator):
    def outcomes() -> list[str | None]:
        mps_emulator.configure(seed=7, error_rate=0.5)
        client = sync_client(mps_emulator)
        codes = []
        for _ in range(12):
            try:
                client.call_json("DescribeTranscodeTemplates", {"Limit": 1})
                codes.append(None)
            except TencentCloudSDKException as exc:
                codes.append(exc.code)
        mps_emulator.reset()
        return codes

    first, second = outcomes(), outcomes()

    assert first == second
    assert set(first) == {None, "InternalError"}


def test_unknown_or_invalid_knobs_are_refused(mps_emulator):
    with pytest.raises(ValueError, match="Unknown emulator knob 'error_ratio'"):
        mps_emulator.configure(error_ratio=1)
    with pytest.raises(ValueError, match=r"Knob error_rate\['CreateAigcImageTask'\] is a probability"):
        mps_emulator.configure(error_rate={"CreateAigcImageTask": 2})
    with pytest.raises(ValueError, match="Knob error_burst must be a whole number of calls"):
        mps_emulator.configure(error_burst=1.5)

    assert mps_emulator.config()["error_rate"] == 0.0


def download(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def done_task_url(handle) -> str:
    handle.configure(wait_seconds=0, run_seconds=0)
    client = sync_client(handle)
    return describe(client, create(client, Prompt="a cat"))["ImageUrls"][0]


def test_unscoped_faults_leave_image_downloads_alone(mps_emulator):
    url = done_task_url(mps_emulator)
    mps_emulator.configure(html_5xx_rate=1.0, drop_before_read_rate=1.0)

    assert download(url)[0] == 200


def test_download_faults_are_scoped_with_the_download_image_action(mps_emulator):
    url = done_task_url(mps_emulator)

    mps_emulator.configure(html_5xx_rate={"DownloadImage": 1.0})
    status, body = download(url)
    assert (status, b"502 Bad Gateway" in body) == (502, True)

    mps_emulator.configure(html_5xx_rate=0.0, drop_before_read_rate={"DownloadImage": 1.0})
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        download(url)

    mps_emulator.configure(drop_before_read_rate=0.0, drop_after_create_rate={"DownloadImage": 1.0})
    with pytest.raises(http.client.IncompleteRead):
        download(url)

    assert [(d["StatusCode"], d["Fault"]) for d in mps_emulator.downloads()] == [
        (502, "html_5xx"),
        (None, "drop_before_read"),
        (200, "truncated_body"),
    ]
