"""The in-process server, the state file and the ``mps-emulator`` console script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle
from airflow_provider_mps.emulator.server import ThreadedEmulatorServer, build_parser, knobs_from_args, main
from tests.emulator.sdk import create, describe, sync_client

CONSOLE_SCRIPT = Path(sys.executable).with_name("mps-emulator")


def test_tasks_survive_a_restart_with_a_state_file(tmp_path):
    state_file = tmp_path / "state.json"
    with ThreadedEmulatorServer(state_file=state_file, wait_seconds=0, run_seconds=0) as first:
        task_id = create(sync_client(EmulatorHandle.from_server(first)), Prompt="remember me")
        first_image = httpx.get(f"{first.endpoint}/images/{task_id}/0.png", timeout=10).content

    with ThreadedEmulatorServer(state_file=state_file) as second:
        handle = EmulatorHandle.from_server(second)
        described = describe(sync_client(handle), task_id)
        second_image = httpx.get(described["ImageUrls"][0], timeout=10).content
        listed = [(t["TaskId"], t["Request"]) for t in handle.tasks()]

    assert described == {
        "Status": "DONE",
        "ImageUrls": [f"{second.endpoint}/images/{task_id}/0.png"],
        "Message": "",
    }
    assert listed == [(task_id, {"Prompt": "remember me"})]
    assert second_image == first_image


def test_state_file_keeps_forced_statuses(tmp_path):
    state_file = tmp_path / "state.json"
    with ThreadedEmulatorServer(state_file=state_file) as first:
        handle = EmulatorHandle.from_server(first)
        task_id = create(sync_client(handle), Prompt="doomed")
        handle.force_status(task_id, "FAIL", "Forced before the restart.")

    with ThreadedEmulatorServer(state_file=state_file) as second:
        described = describe(sync_client(EmulatorHandle.from_server(second)), task_id)

    assert described == {"Status": "FAIL", "ImageUrls": [], "Message": "Forced before the restart."}


def test_public_url_sets_the_base_of_image_links():
    with ThreadedEmulatorServer(
        public_url="https://mps.example.test/", wait_seconds=0, run_seconds=0
    ) as server:
        client = sync_client(EmulatorHandle.from_server(server))
        described = describe(client, task_id := create(client, Prompt="a cat"))

    assert described["ImageUrls"] == [f"https://mps.example.test/images/{task_id}/0.png"]


def test_stopped_server_refuses_connections():
    server = ThreadedEmulatorServer()
    server.start()
    endpoint = server.endpoint
    server.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(endpoint + "/_emulator/health", timeout=5)


def test_help_documents_every_flag_with_its_default():
    text = " ".join(build_parser().format_help().split())

    for flag, default in [
        ("--host", "127.0.0.1"),
        ("--port", "9100"),
        ("--rate-limit", "20.0"),
        ("--wait-seconds", "1.0"),
        ("--run-seconds", "3.0"),
        ("--fail-rate", "0.0"),
        ("--image-ttl-seconds", "43200.0"),
        ("--error-rate", "0.0"),
        ("--error-code", "'InternalError'"),
        ("--error-burst", "0"),
        ("--latency-seconds", "0.0"),
        ("--drop-before-read-rate", "0.0"),
        ("--drop-after-create-rate", "0.0"),
        ("--malformed-body-rate", "0.0"),
        ("--html-5xx-rate", "0.0"),
    ]:
        assert flag in text
        assert f"default {default}" in text or f"(default: {default})" in text, flag


def test_fault_flags_take_a_value_or_action_scoped_values():
    args = build_parser().parse_args(
        [
            "--error-rate", "CreateAigcImageTask=0.5",
            "--error-rate", "0.1",
            "--error-code", "RequestLimitExceeded",
            "--latency-seconds", "DownloadImage=2",
        ]
    )  # fmt: skip

    knobs = knobs_from_args(args)

    assert (knobs["error_rate"], knobs["error_code"], knobs["latency_seconds"]) == (
        {"CreateAigcImageTask": 0.5, "*": 0.1},
        "RequestLimitExceeded",
        {"DownloadImage": 2},
    )


def test_binding_a_non_loopback_host_prints_a_loud_warning(capsys):
    # 192.0.2.1 (TEST-NET-1) is never a local address: the warning prints, then binding fails.
    assert main(["--host", "192.0.2.1", "--port", "0"]) == 1

    err = capsys.readouterr().err
    assert "WARNING: the MPS emulator binds 192.0.2.1, not loopback" in err
    assert "mps-emulator: cannot listen on 192.0.2.1:0" in err


def test_invalid_knob_on_the_command_line_exits_with_a_message(capsys):
    assert main(["--port", "0", "--fail-rate", "2"]) == 2

    assert capsys.readouterr().err == (
        "mps-emulator: Knob fail_rate is a probability and must lie between 0 and 1, not 2.0.\n"
    )


def test_console_script_serves_the_sdk_until_interrupted(tmp_path):
    env = {**os.environ, "MPS_EMULATOR_SECRET_KEY": "cli-secret-key"}
    process = subprocess.Popen(
        [
            str(CONSOLE_SCRIPT),
            "--port",
            "0",
            "--secret-id",
            "AKIDcli",
            "--wait-seconds",
            "0",
            "--run-seconds",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = process.stdout.readline()
        connection_line = process.stdout.readline()
        endpoint = banner.split(" on ")[1].split(" ")[0]
        handle = EmulatorHandle(endpoint, "AKIDcli", "cli-secret-key")

        client = sync_client(handle)
        described = describe(client, create(client, Prompt="from the CLI"))
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)

    assert banner == f"MPS emulator listening on {endpoint} (SecretId AKIDcli)\n"
    assert connection_line.startswith("Airflow connection: AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT=")
    assert json.loads(connection_line.split("=", 1)[1].strip().strip("'")) == {
        "conn_type": "tencentcloud_mps",
        "login": "AKIDcli",
        "password": "<the --secret-key value>",
        "extra": {"endpoint": endpoint, "region": "ap-guangzhou"},
    }
    assert "cli-secret-key" not in banner + connection_line + err
    assert described["Status"] == "DONE"
    assert process.returncode == 0, err


def test_server_start_fails_clearly_when_the_port_is_taken():
    with ThreadedEmulatorServer() as running, pytest.raises(OSError, match="Address already in use"):
        ThreadedEmulatorServer(port=running.port).start()


def test_started_server_answers_at_once():
    with ThreadedEmulatorServer() as server:
        response = httpx.get(server.endpoint + "/_emulator/health", timeout=5)

    assert (response.status_code, response.json()) == (200, {"status": "ok"})
