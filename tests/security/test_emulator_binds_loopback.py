"""The emulator (well-known credentials, no real security) binds loopback unless told otherwise, loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from airflow_provider_mps.emulator.server import DEFAULT_HOST, ThreadedEmulatorServer

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle

CONSOLE_SCRIPT = Path(sys.executable).with_name("mps-emulator")
CLI_KEY = "cli-key-that-must-not-be-printed-4d1f"
WARNING_BANNER = (
    "WARNING: the MPS emulator binds {host}, not loopback: anyone who can reach this\n"
    "machine can use it. It is a test double with well-known credentials; never expose it."
)


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(CONSOLE_SCRIPT), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MPS_EMULATOR_SECRET_KEY": CLI_KEY},
    )


def test_console_script_binds_loopback_by_default_and_never_prints_the_key():
    process = _start("--port", "0")
    try:
        banner = process.stdout.readline()
        connection_line = process.stdout.readline()
        listening = [c.laddr for c in psutil.Process(process.pid).net_connections() if c.status == "LISTEN"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=15)

    assert banner.startswith("MPS emulator listening on http://127.0.0.1:")
    assert [address.ip for address in listening] == ["127.0.0.1"]
    assert "WARNING" not in err
    assert CLI_KEY not in banner + connection_line + err
    assert '"password": "<the --secret-key value>"' in connection_line


@pytest.mark.parametrize("host", ["192.0.2.1", "2001:db8::1"])
def test_console_script_warns_loudly_before_binding_anything_but_loopback(host):
    # Documentation addresses (TEST-NET-1, 2001:db8::/32) are never local: the warning comes out,
    # then binding fails, so nothing is ever exposed by this test.
    process = _start("--host", host, "--port", "0")
    out, err = process.communicate(timeout=60)

    assert process.returncode == 1
    assert WARNING_BANNER.format(host=host) in err
    assert err.count("!" * 78) == 2
    assert f"mps-emulator: cannot listen on {host}:0" in err
    assert out == ""
    assert CLI_KEY not in err


def test_in_process_emulator_and_the_pytest_fixture_bind_loopback(mps_emulator: EmulatorHandle):
    with ThreadedEmulatorServer(port=0) as server:
        own = server.endpoint

    assert DEFAULT_HOST == "127.0.0.1"
    assert own.startswith("http://127.0.0.1:")
    assert mps_emulator.endpoint.startswith("http://127.0.0.1:")
