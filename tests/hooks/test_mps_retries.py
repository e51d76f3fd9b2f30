"""
Retry policy: describe retries transient failures; create retries only when nothing was created.

The emulator's request log shows exactly which calls reached it and how each ended.
"""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mps import DEFAULT_CONN_ID
from airflow_provider_mps.core.errors import Handling, classify
from airflow_provider_mps.exceptions import MpsApiError, MpsNetworkError, MpsTransientError
from airflow_provider_mps.hooks.mps import MpsHook
from tests.hooks.conftest import describe_with

CREATE = "CreateAigcImageTask"
DESCRIBE = "DescribeAigcImageTask"


def calls(emulator):
    return [(r["Action"], r["ErrorCode"]) for r in emulator.requests()]


def describes(*codes: str | None) -> list[tuple[str, str | None]]:
    """The :func:`calls` of describes that ended with ``codes`` (None: success), in order."""
    return [(DESCRIBE, code) for code in codes]


def fast_hook(retry_limit: int, conn_id: str = DEFAULT_CONN_ID) -> MpsHook:
    """A hook on ``conn_id`` retrying ``retry_limit`` times, 10 ms apart."""
    return MpsHook(conn_id, retry_limit=retry_limit, retry_delay=0.01)


def hook_with_a_task(retry_limit: int) -> tuple[MpsHook, str]:
    """A :func:`fast_hook` and the TaskId of a task it created."""
    hook = fast_hook(retry_limit)
    return hook, hook.create_aigc_image_task(prompt="p")


def create_error(hook: MpsHook, error_type: type[Exception], **params: Any) -> Any:
    """The ``error_type`` error the hook's create (prompt "p" unless ``params`` say) raised."""
    with pytest.raises(error_type) as raised:
        hook.create_aigc_image_task(**{"prompt": "p", **params})
    return raised.value


def network_fault(error: Any) -> tuple[str, bool]:
    """``(code, request_may_have_reached_service)`` of a network error."""
    return error.code, error.request_may_have_reached_service


def warnings_logged(hook_logs) -> list[str]:
    """The events of the hook's WARNING records (one per retry)."""
    return [log["event"] for log in hook_logs if log["log_level"] == "warning"]


def test_describe_retries_transient_errors_until_it_succeeds(mps_conn):
    hook, task_id = hook_with_a_task(3)
    mps_conn.configure(error_code="InternalError", error_burst={"DescribeAigcImageTask": 2})

    result = hook.describe_aigc_image_task(task_id)

    assert result["TaskId"] == task_id
    assert calls(mps_conn) == [(CREATE, None), *describes("InternalError", "InternalError", None)]


def test_async_describe_retries_transient_errors_until_it_succeeds(mps_conn):
    hook, task_id = hook_with_a_task(3)
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={"DescribeAigcImageTask": 2})

    assert describe_with(hook, "async", task_id)["TaskId"] == task_id
    assert calls(mps_conn)[1:] == describes("RequestLimitExceeded", "RequestLimitExceeded", None)


def test_describe_retries_network_faults(mps_conn):
    hook, task_id = hook_with_a_task(2)
    mps_conn.configure(html_5xx_rate={"DescribeAigcImageTask": 1.0})

    with pytest.raises(MpsNetworkError) as raised:
        hook.describe_aigc_image_task(task_id)

    assert raised.value.code == "ServerNetworkError"
    assert [action for action, _ in calls(mps_conn)] == ["CreateAigcImageTask"] + [
        "DescribeAigcImageTask"
    ] * 3


def test_describe_gives_up_after_retry_limit_retries_and_logs_each(mps_conn, hook_logs):
    hook, task_id = hook_with_a_task(2)
    mps_conn.configure(error_code="InternalError", error_burst={"DescribeAigcImageTask": 10})

    with pytest.raises(MpsTransientError) as raised:
        hook.describe_aigc_image_task(task_id)

    assert raised.value.code == "InternalError"
    assert calls(mps_conn)[1:] == describes("InternalError", "InternalError", "InternalError")
    retries = warnings_logged(hook_logs)
    assert len(retries) == 2
    request_ids = [r["RequestId"] for r in mps_conn.requests()[1:3]]
    assert retries[0].startswith("DescribeAigcImageTask failed with InternalError: ")
    assert f" (RequestId {request_ids[0]}); retry 1 of 2 in " in retries[0]
    assert f" (RequestId {request_ids[1]}); retry 2 of 2 in " in retries[1]


def test_describe_does_not_retry_a_fatal_error(mps_conn):
    with pytest.raises(MpsApiError):
        fast_hook(3).describe_aigc_image_task("1-AigcImage-unknown")

    assert calls(mps_conn) == [("DescribeAigcImageTask", "ResourceNotFound.TaskNotFound")]


def test_create_retries_when_the_service_refused_it_for_quota(mps_conn):
    mps_conn.configure(error_code="RequestLimitExceeded", error_burst={"CreateAigcImageTask": 2})

    task_id = fast_hook(3).create_aigc_image_task(prompt="p")

    assert [task["TaskId"] for task in mps_conn.tasks()] == [task_id]
    assert calls(mps_conn) == [
        ("CreateAigcImageTask", "RequestLimitExceeded"),
        ("CreateAigcImageTask", "RequestLimitExceeded"),
        ("CreateAigcImageTask", None),
    ]


def test_create_retries_when_the_connection_was_never_established(
    emulator_connection, closed_port_endpoint, hook_logs
):
    hook = fast_hook(2, emulator_connection(extra={"endpoint": closed_port_endpoint}))

    error = create_error(hook, MpsNetworkError)

    assert network_fault(error) == ("ClientNetworkError.ConnectFailed", False)
    warnings = warnings_logged(hook_logs)
    assert len(warnings) == 2
    assert [" retry 1 of 2 in " in warnings[0], " retry 2 of 2 in " in warnings[1]] == [True, True]


def assert_left_to_the_caller(error, hook_logs):
    """A possibly created task is judged once, by the caller's policy: the hook only raises."""
    assert classify(error, "CreateAigcImageTask") is Handling.POSSIBLY_CREATED
    assert [log for log in hook_logs if log["log_level"] == "warning"] == []


def test_create_is_not_retried_after_an_internal_error_and_is_judged_possibly_created(mps_conn, hook_logs):
    mps_conn.configure(error_code="InternalError", error_burst={"CreateAigcImageTask": 1})

    error = create_error(fast_hook(3), MpsTransientError, model_name="GEM")

    assert calls(mps_conn) == [(CREATE, "InternalError")]
    assert_left_to_the_caller(error, hook_logs)


def test_create_is_not_retried_when_the_connection_drops_after_the_task_was_created(mps_conn, hook_logs):
    mps_conn.configure(drop_after_create_rate={"CreateAigcImageTask": 1.0})

    prompt = "A lighthouse on a cliff at dawn, seen from the sea, in the style of a woodcut print"
    error = create_error(fast_hook(3), MpsNetworkError, prompt=prompt)

    assert network_fault(error) == ("ClientNetworkError.ConnectionLost", True)
    assert len(mps_conn.tasks()) == 1  # the orphan the warning tells the user about
    assert [action for action, _ in calls(mps_conn)] == [CREATE]
    assert_left_to_the_caller(error, hook_logs)


def test_create_is_not_retried_after_a_tls_error_while_reading_the_answer(
    emulator_connection, tls_fault_server, hook_logs
):
    # Finding 5 of issue 11: the create reached the service, so resending it could pay twice.
    server = tls_fault_server("after_request")
    hook = fast_hook(3, emulator_connection(extra={"endpoint": server.endpoint}))

    error = create_error(hook, MpsNetworkError)

    assert network_fault(error) == ("ClientNetworkError.ConnectionLost", True)
    assert len(server.received) == 1
    assert_left_to_the_caller(error, hook_logs)


def test_create_is_retried_after_a_failed_tls_handshake(emulator_connection, tls_fault_server, hook_logs):
    server = tls_fault_server("handshake")
    hook = fast_hook(2, emulator_connection(extra={"endpoint": server.endpoint}))

    error = create_error(hook, MpsNetworkError)

    assert network_fault(error) == ("ClientNetworkError.ConnectFailed", False)
    retries = warnings_logged(hook_logs)
    assert [event.split(";")[-1] for event in retries] == [
        " retry 1 of 2 in 0.0 s.",
        " retry 2 of 2 in 0.0 s.",
    ]
    assert server.received == []


def test_create_is_not_retried_after_an_html_5xx_answer(mps_conn):
    mps_conn.configure(html_5xx_rate={"CreateAigcImageTask": 1.0})

    create_error(fast_hook(3), MpsNetworkError)

    assert [action for action, _ in calls(mps_conn)] == [CREATE]


def test_create_is_not_retried_after_a_fatal_error_and_does_not_warn(mps_conn, hook_logs):
    mps_conn.configure(error_code="InvalidParameterValue", error_burst={"CreateAigcImageTask": 1})

    error = create_error(fast_hook(3), MpsApiError)

    assert (type(error), error.code) == (MpsApiError, "InvalidParameterValue")
    assert calls(mps_conn) == [(CREATE, "InvalidParameterValue")]
    assert [log for log in hook_logs if log["log_level"] == "warning"] == []
