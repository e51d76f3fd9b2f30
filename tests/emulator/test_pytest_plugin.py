"""The ``mps_emulator`` / ``mps_conn`` fixtures as a user's test suite sees them."""

from __future__ import annotations

import json
import os

from tests.emulator.sdk import create, sync_client

pytest_plugins = ["pytester"]


def test_mps_conn_points_the_default_connection_at_the_emulator(mps_conn):
    assert json.loads(os.environ["AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT"]) == {
        "conn_type": "tencentcloud_mps",
        "login": mps_conn.secret_id,
        "password": mps_conn.secret_key,
        "extra": {"endpoint": mps_conn.endpoint, "region": "ap-guangzhou"},
    }


def test_handle_exposes_endpoint_and_credentials_but_repr_hides_the_key(mps_emulator):
    assert mps_emulator.endpoint.startswith("http://127.0.0.1:")
    assert (mps_emulator.secret_id, mps_emulator.token) == ("AKIDMPSEMULATOR0000000000000000000000", None)
    assert mps_emulator.secret_key not in repr(mps_emulator)


def test_fixture_knob_defaults_are_the_quick_ones(mps_emulator):
    config = mps_emulator.config()

    assert (config["wait_seconds"], config["run_seconds"], config["rate_limit"]) == (0.2, 0.3, 20.0)


def test_reset_forgets_tasks_requests_and_knobs(mps_emulator):
    create(sync_client(mps_emulator), Prompt="a cat")
    mps_emulator.configure(error_rate=0.5)

    mps_emulator.reset()

    assert (mps_emulator.tasks(), mps_emulator.requests(), mps_emulator.config()["error_rate"]) == (
        [],
        [],
        0.0,
    )


USER_TESTS = """
import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mps.v20190612 import mps_client


def client(handle):
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=handle.endpoint[7:]))
    return mps_client.MpsClient(credential.Credential(handle.secret_id, handle.secret_key, handle.token),
                                "ap-guangzhou", profile)


def test_first_creates_a_task(mps_emulator):
    client(mps_emulator).call_json("CreateAigcImageTask", {"Prompt": "a cat"})
    mps_emulator.configure(fail_rate=1.0)
    assert len(mps_emulator.tasks()) == 1


def test_second_starts_clean(mps_emulator):
    assert mps_emulator.tasks() == []
    assert mps_emulator.config()["fail_rate"] == 0.0


def test_options_override_reaches_the_server(mps_emulator):
    assert mps_emulator.token == "user-token"
    assert mps_emulator.config()["wait_seconds"] == 5.0
"""

USER_CONFTEST = """
import pytest


@pytest.fixture(scope="session")
def mps_emulator_options():
    return {"token": "user-token", "wait_seconds": 5.0}
"""


def test_users_get_isolated_tests_and_can_override_options(pytester):
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_TESTS)

    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", "-q"
    )

    result.assert_outcomes(passed=3)


SERVER_ERROR_TEST = """
def test_emulator_breaks(mps_emulator_server, mps_emulator):
    def broken(*args, **kwargs):
        raise RuntimeError("backend bug")

    mps_emulator_server.backend.describe_task = broken
    import urllib.request
    from tencentcloud.common import credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.mps.v20190612 import mps_client

    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=mps_emulator.endpoint[7:]))
    client = mps_client.MpsClient(credential.Credential(mps_emulator.secret_id, mps_emulator.secret_key),
                                  "ap-guangzhou", profile)
    try:
        client.call_json("DescribeAigcImageTask", {"TaskId": "x"})
    except TencentCloudSDKException as exc:
        assert exc.code == "InternalError"
"""


def test_errors_inside_the_emulator_fail_the_test_at_teardown(pytester):
    pytester.makepyfile(test_broken=SERVER_ERROR_TEST)

    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", "-q"
    )

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: backend bug*"])
