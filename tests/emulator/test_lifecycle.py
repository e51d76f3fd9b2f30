from __future__ import annotations

import time
import urllib.request

import pytest

from airflow_provider_mps.emulator.models import Task
from tests.emulator.sdk import async_client, create, describe, describe_request, failed, sync_client


def wait_until_terminal(client, task_id: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = describe(client, task_id)
        if result["Status"] in ("DONE", "FAIL"):
            return result
        time.sleep(0.05)
    raise AssertionError(f"Task {task_id} did not finish within {timeout} seconds.")


def test_status_follows_the_clock_wait_then_run_then_the_outcome():
    task = Task(
        task_id="1-AigcImage-t",
        secret_id="AKID",
        created_at=1000.0,
        request={"Prompt": "a cat"},
        wait_seconds=1.0,
        run_seconds=3.0,
        outcome="DONE",
    )

    statuses = [task.status(1000.0 + elapsed) for elapsed in (0, 0.99, 1.0, 3.99, 4.0, 1e6)]

    assert statuses == ["WAIT", "WAIT", "RUN", "RUN", "DONE", "DONE"]


def test_task_goes_through_wait_run_done_and_serves_its_image(mps_emulator):
    mps_emulator.configure(wait_seconds=0.3, run_seconds=0.6)
    client = sync_client(mps_emulator)
    task_id = create(client, Prompt="draw a cat", ModelName="GEM")

    seen: list[str] = []
    deadline = time.monotonic() + 30
    while (not seen or seen[-1] not in ("DONE", "FAIL")) and time.monotonic() < deadline:
        status = describe(client, task_id)["Status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.02)

    assert seen == ["WAIT", "RUN", "DONE"]
    image_url = f"{mps_emulator.endpoint}/images/{task_id}/0.png"
    assert describe(client, task_id) == {"Status": "DONE", "ImageUrls": [image_url], "Message": ""}
    with urllib.request.urlopen(image_url) as response:
        body = response.read()
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Content-Length"] == str(len(body))
    assert body.startswith(b"\x89PNG\r\n\x1a\n")


def test_prompt_with_fail_marker_ends_in_fail_with_message(mps_emulator):
    client = sync_client(mps_emulator)
    task_id = create(client, Prompt="draw a cat [emulator:fail]")

    assert wait_until_terminal(client, task_id) == failed(
        "Image generation failed: the prompt asked the emulator to fail this task."
    )


def test_tasks_introspection_lists_request_exactly_as_received(mps_emulator):
    client = sync_client(mps_emulator)
    params = {"Prompt": "画一只猫", "ModelName": "GEM", "ExtraParameters": {"AspectRatio": "16:9"}}
    task_id = create(client, **params)

    [task] = mps_emulator.tasks()
    assert task == {
        "TaskId": task_id,
        "Status": "WAIT",
        "SecretId": mps_emulator.secret_id,
        "CreatedAt": task["CreatedAt"],
        "Request": params,
        "ImageUrls": [],
        "Message": "",
    }


@pytest.mark.asyncio
async def test_async_client_describes_a_task(mps_emulator):
    mps_emulator.configure(wait_seconds=600)  # still WAIT however slow the machine
    task_id = create(sync_client(mps_emulator), Prompt="draw a dog")
    client = async_client(mps_emulator)

    response = await client.DescribeAigcImageTask(describe_request(task_id))

    assert (response.Status, response.ImageUrls, response.Message) == ("WAIT", [], "")
