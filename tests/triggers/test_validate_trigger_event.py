from __future__ import annotations

import pytest

from airflow_provider_mps.exceptions import MpsError, MpsTaskFailedError, MpsTaskTimeoutError
from airflow_provider_mps.triggers.mps import validate_trigger_event

DONE = {
    "TaskId": "task-1",
    "Status": "DONE",
    "ImageUrls": ["http://127.0.0.1:1/images/task-1/0.png"],
    "Message": None,
    "RequestId": "req-9",
}


def _event(status, result=None, message="", mps_task_id="task-1"):
    return {"status": status, "mps_task_id": mps_task_id, "result": result, "message": message}


def test_success_event_returns_the_describe_result():
    assert validate_trigger_event(_event("success", DONE), mps_task_id="task-1") == DONE


def test_failed_event_raises_with_the_service_message_task_id_and_request_id():
    failed = {**DONE, "Status": "FAIL", "ImageUrls": [], "Message": "Content moderation rejected the prompt."}

    with pytest.raises(MpsTaskFailedError) as error:
        validate_trigger_event(_event("failed", failed, "Content moderation rejected the prompt."))

    assert str(error.value) == (
        "MPS task task-1 failed: Content moderation rejected the prompt. (RequestId: req-9)"
    )
    assert (error.value.task_id, error.value.request_id) == ("task-1", "req-9")


def test_timeout_event_raises_timeout_with_the_trigger_message():
    with pytest.raises(MpsTaskTimeoutError) as error:
        validate_trigger_event(_event("timeout", None, "MPS task task-1 did not finish before 2026."))

    assert str(error.value) == "MPS task task-1 did not finish before 2026."


def test_error_event_raises_with_the_trigger_message():
    message = "Polling MPS task task-1 failed: DescribeAigcImageTask failed with AuthFailure"

    with pytest.raises(MpsError) as error:
        validate_trigger_event(_event("error", None, message))

    assert type(error.value) is MpsError
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "The trigger event must be a dict from MpsAigcImageTaskTrigger, got None."),
        ("success", "The trigger event must be a dict from MpsAigcImageTaskTrigger, got 'success'."),
        (
            {"status": "succeeded", "mps_task_id": "task-1"},
            "The trigger event status 'succeeded' is not one of ['error', 'failed', 'success', 'timeout']; "
            "event: {'status': 'succeeded', 'mps_task_id': 'task-1'}.",
        ),
        (
            {"status": "success", "result": DONE},
            f"The trigger event carries no MPS TaskId; event: {{'status': 'success', 'result': {DONE!r}}}.",
        ),
    ],
)
def test_malformed_events_are_rejected(event, message):
    with pytest.raises(MpsError) as error:
        validate_trigger_event(event)

    assert str(error.value) == message


def test_event_for_another_task_is_rejected():
    with pytest.raises(MpsError) as error:
        validate_trigger_event(_event("success", DONE, mps_task_id="task-2"), mps_task_id="task-1")

    assert str(error.value) == (
        "The trigger event is for MPS task 'task-2', but the task waited for 'task-1'."
    )


def test_success_event_without_image_urls_is_not_a_success():
    event = _event("success", {**DONE, "ImageUrls": None})

    with pytest.raises(MpsError) as error:
        validate_trigger_event(event)

    assert (
        str(error.value) == f"The success event for MPS task task-1 has no ImageUrls list; event: {event!r}."
    )


def test_success_event_for_a_task_not_done_is_not_a_success():
    with pytest.raises(MpsError) as error:
        validate_trigger_event(_event("success", {**DONE, "Status": "RUN"}))

    assert str(error.value) == "The success event for MPS task task-1 reports status 'RUN', not DONE."
