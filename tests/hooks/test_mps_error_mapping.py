"""
Every failure of either SDK client becomes the same provider exception.

Each case runs through the sync client (``describe_aigc_image_task``) and the async client
(``adescribe_aigc_image_task``) against a real fault: the emulator's error and fault knobs, a
closed loopback port, or a loopback socket that answers garbage.  Retries are off here
(``retry_limit=0``) so each test sees the mapping of exactly one call.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from airflow_provider_mps.exceptions import MpsApiError, MpsNetworkError, MpsTransientError
from airflow_provider_mps.hooks.mps import MpsHook
from tests.hooks.conftest import describe_with, wait_for_requests

TASK_ID = "1-AigcImage-00000000000000000000000000000001"
CLIENTS = ["sync", "async"]
ACTION = "DescribeAigcImageTask"


def failure(hook: MpsHook, client: str, task_id: str = TASK_ID) -> Any:
    with pytest.raises(MpsApiError) as raised:
        describe_with(hook, client, task_id)
    return raised.value


def summary(error: Any) -> tuple[Any, ...]:
    return (
        type(error),
        error.code,
        error.action,
        error.transient,
        getattr(error, "request_may_have_reached_service", None),
    )


def network_error(code: str, *, reached: bool) -> tuple[Any, ...]:
    """The :func:`summary` of a transient ``ClientNetworkError.<code>`` of the describe call."""
    return (MpsNetworkError, f"ClientNetworkError.{code}", ACTION, True, reached)


def fatal_error(code: str) -> tuple[Any, ...]:
    """The :func:`summary` of a fatal service error ``code`` of the describe call."""
    return (MpsApiError, code, ACTION, False, None)


def hook_at(emulator_connection: Any, endpoint: str) -> MpsHook:
    """A hook without retries whose connection points at ``endpoint``."""
    return MpsHook(emulator_connection(extra={"endpoint": endpoint}), retry_limit=0)


@pytest.mark.parametrize("client", CLIENTS)
def test_service_error_is_a_fatal_api_error_with_code_message_and_request_id(
    client, mps_emulator, emulator_connection
):
    hook = MpsHook(emulator_connection(password="wrong-secret-key"), retry_limit=0)

    error = failure(hook, client)

    [request] = mps_emulator.requests()
    assert summary(error) == fatal_error("AuthFailure.SignatureFailure")
    assert error.request_id == request["RequestId"]
    assert str(error) == (
        f"DescribeAigcImageTask failed with AuthFailure.SignatureFailure: {error.message} "
        f"(RequestId: {request['RequestId']})"
    )
    assert error.message


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("code", ["InternalError", "RequestLimitExceeded", "ResourceUnavailable.Busy"])
def test_transient_service_error_codes_are_transient_errors(client, code, mps_conn):
    mps_conn.configure(error_code=code, error_burst=1)

    error = failure(MpsHook(retry_limit=0), client)

    [request] = mps_conn.requests()
    assert summary(error) == (MpsTransientError, code, ACTION, True, None)
    assert (request["ErrorCode"], error.request_id) == (code, request["RequestId"])


@pytest.mark.parametrize("client", CLIENTS)
def test_refused_connection_never_reached_the_service(client, emulator_connection, closed_port_endpoint):
    error = failure(hook_at(emulator_connection, closed_port_endpoint), client)

    assert summary(error) == network_error("ConnectFailed", reached=False)
    assert error.message.startswith("Could not connect to the service, so the request was not sent: ")
    assert error.request_id is None


@pytest.mark.parametrize("client", CLIENTS)
def test_connection_dropped_by_the_service_may_have_reached_it(client, mps_conn):
    mps_conn.configure(drop_before_read_rate=1.0)

    error = failure(MpsHook(retry_limit=0), client)

    assert summary(error) == network_error("ConnectionLost", reached=True)


@pytest.mark.parametrize("client", CLIENTS)
def test_socket_that_accepts_and_closes_counts_as_a_lost_connection(
    client, emulator_connection, loopback_server
):
    server = loopback_server("close")

    error = failure(hook_at(emulator_connection, server.endpoint), client)

    assert summary(error)[:2] == (MpsNetworkError, "ClientNetworkError.ConnectionLost")
    assert (error.request_may_have_reached_service, server.accepted) == (True, 1)


@pytest.mark.parametrize("client", CLIENTS)
def test_answer_that_is_not_http_counts_as_a_lost_connection(client, emulator_connection, loopback_server):
    server = loopback_server("garbage")

    error = failure(hook_at(emulator_connection, server.endpoint), client)

    assert summary(error) == network_error("ConnectionLost", reached=True)


@pytest.mark.parametrize("client", CLIENTS)
def test_failed_tls_handshake_never_reached_the_service(client, emulator_connection, tls_fault_server):
    server = tls_fault_server("handshake")

    error = failure(hook_at(emulator_connection, server.endpoint), client)

    assert summary(error) == network_error("ConnectFailed", reached=False)
    assert server.received == []


@pytest.mark.parametrize("client", CLIENTS)
def test_tls_error_while_reading_the_answer_may_have_reached_the_service(
    client, emulator_connection, tls_fault_server
):
    # Finding 5 of issue 11: requests raises SSLError here too, after the request went out.
    server = tls_fault_server("after_request")

    error = failure(hook_at(emulator_connection, server.endpoint), client)

    assert summary(error) == network_error("ConnectionLost", reached=True)
    # The whole request reached the server before its answer failed to decrypt.
    assert [b"X-TC-Action: DescribeAigcImageTask" in request for request in server.received] == [True]


@pytest.mark.parametrize("client", CLIENTS)
def test_read_timeout_may_have_reached_the_service(client, mps_emulator, emulator_connection):
    mps_emulator.configure(latency_seconds=2.0)
    hook = MpsHook(emulator_connection(extra={"request_timeout": 0.3}), retry_limit=0)

    error = failure(hook, client)

    # The emulator finishes (and logs) the request after its latency, within this test.
    assert len(wait_for_requests(mps_emulator, 1)) == 1
    assert summary(error) == network_error("Timeout", reached=True)
    # The SDK's own detail follows after a colon when it has one (the async client's has none).
    assert re.fullmatch(r"The request timed out after it was sent(: .+|\.)", error.message), error.message


@pytest.mark.parametrize("client", CLIENTS)
def test_malformed_json_body_is_a_network_error(client, mps_conn):
    hook = MpsHook(retry_limit=0)
    task_id = hook.create_aigc_image_task(prompt="p")
    mps_conn.configure(malformed_body_rate=1.0)

    error = failure(hook, client, task_id)

    assert summary(error) == network_error("MalformedResponse", reached=True)
    assert error.message.startswith("The service's answer could not be read as an API response: ")


@pytest.mark.parametrize("client", CLIENTS)
def test_html_5xx_page_is_a_transient_server_network_error(client, mps_conn):
    mps_conn.configure(html_5xx_rate=1.0)

    error = failure(MpsHook(retry_limit=0), client)

    assert summary(error) == (MpsNetworkError, "ServerNetworkError", ACTION, True, True)
    assert error.message.startswith(
        "The service answered with an HTTP error status instead of an API response: <"
    )
    assert len(error.message) <= 400


@pytest.mark.parametrize("client", CLIENTS)
def test_unknown_task_id_is_the_same_fatal_error_on_both_clients(client, mps_conn):
    error = failure(MpsHook(retry_limit=0), client)

    assert summary(error) == fatal_error("ResourceNotFound.TaskNotFound")


def test_provider_errors_survive_pickling_for_the_triggerer(mps_conn):
    import pickle

    mps_conn.configure(html_5xx_rate=1.0)
    error = failure(MpsHook(retry_limit=0), "sync")

    copy = pickle.loads(pickle.dumps(error))

    assert (type(copy), str(copy), copy.request_may_have_reached_service) == (
        MpsNetworkError,
        str(error),
        True,
    )
