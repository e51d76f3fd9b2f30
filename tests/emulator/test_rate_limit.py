"""Per-SecretId, per-action quota: a token bucket holding ``rate_limit`` calls, refilled at that rate."""

from __future__ import annotations

import pytest
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from airflow_provider_mps.emulator.exceptions import RequestLimitExceededError
from airflow_provider_mps.emulator.knobs import Knobs
from airflow_provider_mps.emulator.models import EmulatorBackend
from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
from tests.emulator.sdk import sync_client


def list_templates(client) -> str | None:
    try:
        client.call_json("DescribeTranscodeTemplates", {"Limit": 1})
    except TencentCloudSDKException as exc:
        return exc.code
    return None


def test_calls_beyond_the_quota_get_request_limit_exceeded(mps_emulator):
    # A quota this small refills one call every 100 seconds: the second call is always refused.
    mps_emulator.configure(rate_limit=0.01)
    client = sync_client(mps_emulator)

    assert [list_templates(client) for _ in range(3)] == [
        None,
        "RequestLimitExceeded",
        "RequestLimitExceeded",
    ]
    assert [r["ErrorCode"] for r in mps_emulator.requests()] == [
        None,
        "RequestLimitExceeded",
        "RequestLimitExceeded",
    ]


def test_request_limit_message_names_the_action_and_the_rate(mps_emulator):
    mps_emulator.configure(rate_limit=0.01)
    client = sync_client(mps_emulator)
    list_templates(client)

    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json("DescribeTranscodeTemplates", {"Limit": 1})

    assert info.value.message == (
        "Your request frequency for DescribeTranscodeTemplates exceeds the limit of 0.01 requests per second."
    )


def test_quota_is_kept_per_action(mps_emulator):
    mps_emulator.configure(rate_limit=0.01)
    client = sync_client(mps_emulator)
    list_templates(client)

    with pytest.raises(TencentCloudSDKException) as info:
        client.call_json("DescribeAigcImageTask", {"TaskId": "1-AigcImage-x"})

    assert info.value.code == "ResourceNotFound.TaskNotFound"


def test_quota_is_kept_per_secret_id():
    with ThreadedEmulatorServer(extra_credentials={"AKIDother": "other-key"}, rate_limit=0.01) as server:
        handle = EmulatorHandle.from_server(server)
        mine, other = sync_client(handle), sync_client(handle, secret_id="AKIDother", secret_key="other-key")

        outcomes = [list_templates(mine), list_templates(other), list_templates(mine), list_templates(other)]

    assert outcomes == [None, None, "RequestLimitExceeded", "RequestLimitExceeded"]


def test_a_full_bucket_lets_a_burst_of_rate_limit_calls_through():
    backend = EmulatorBackend(credentials={"A": "ka"}, knobs=Knobs(rate_limit=20))

    for _ in range(20):
        backend.take_quota("A", "DescribeAigcImageTask")
    with pytest.raises(RequestLimitExceededError):
        backend.take_quota("A", "DescribeAigcImageTask")


def test_rate_limit_zero_disables_the_quota():
    backend = EmulatorBackend(credentials={"A": "ka"}, knobs=Knobs(rate_limit=0))

    for _ in range(100):
        backend.take_quota("A", "DescribeAigcImageTask")


def test_unauthenticated_calls_do_not_spend_the_quota(mps_emulator):
    mps_emulator.configure(rate_limit=0.01)
    bad = sync_client(mps_emulator, secret_key="wrong")

    assert list_templates(bad) == "AuthFailure.SignatureFailure"
    assert list_templates(sync_client(mps_emulator)) is None
