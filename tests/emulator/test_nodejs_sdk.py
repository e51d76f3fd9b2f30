"""Tencent's Node.js SDK against the emulator on a random port: create, describe, and the error codes.

The SDK (``tencentcloud-sdk-nodejs-mps``, pinned in ``node/package-lock.json``) is installed with
``npm ci`` into ``node/node_modules`` once, and reinstalled only when the lock file changes.  The
test fails, and never skips, when ``node`` or ``npm`` is missing: CI installs both.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from airflow_provider_mps.emulator.pytest_plugin import EmulatorHandle

NODE_PROJECT = Path(__file__).resolve().parent / "node"
LOCK_FILE = NODE_PROJECT / "package-lock.json"
# Written after a successful install; names the lock file it was installed from.
INSTALL_STAMP = NODE_PROJECT / "node_modules" / ".installed-from-lock.sha256"
SCRIPT = NODE_PROJECT / "sdk_roundtrip.js"
PROMPT = "画一只猫，水墨风格 — a cat in ink, 5% grey"


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.fail(
            f"`{program}` is not on PATH, and the Node.js SDK test needs it: install Node.js 18 or newer "
            "with npm (on Debian, `apt-get install nodejs npm`).",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def node_sdk() -> str:
    """Path of ``node``, with the pinned Node.js SDK installed in ``tests/emulator/node``."""
    node = _require("node")
    npm = _require("npm")
    lock_digest = hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    # Serialise installs across concurrent test runs in the same checkout.
    with LOCK_FILE.open("rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not INSTALL_STAMP.exists() or INSTALL_STAMP.read_text() != lock_digest:
            installed = subprocess.run(
                [npm, "ci", "--prefix", str(NODE_PROJECT), "--no-audit", "--no-fund"],
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            if installed.returncode != 0:
                pytest.fail(
                    f"`npm ci` could not install the Node.js SDK into {NODE_PROJECT} (exit code "
                    f"{installed.returncode}):\n{installed.stdout}\n{installed.stderr}",
                    pytrace=False,
                )
            INSTALL_STAMP.write_text(lock_digest)
    return node


def run_roundtrip(node: str, emulator: EmulatorHandle) -> dict[str, Any]:
    config = {
        "port": urlsplit(emulator.endpoint).port,
        "secretId": emulator.secret_id,
        "secretKey": emulator.secret_key,
        "prompt": PROMPT,
    }
    finished = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(config),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    assert finished.returncode == 0, f"the Node.js script failed:\n{finished.stderr}"
    return json.loads(finished.stdout)


def test_nodejs_sdk_creates_describes_and_gets_the_service_error_codes_on_a_random_port(
    node_sdk, mps_emulator
):
    port = urlsplit(mps_emulator.endpoint).port

    result = run_roundtrip(node_sdk, mps_emulator)

    task_id = result["taskId"]
    assert result["described"] == {
        "Status": "DONE",
        "ImageUrls": [f"http://mps.localhost:{port}/images/{task_id}/0.png"],
        "Message": "",
    }
    assert result["image"] == {
        "status": 200,
        "contentType": "image/png",
        "length": result["image"]["length"],
        "pngSignature": True,
    }
    assert result["errors"] == {
        "wrongKey": {
            "code": "AuthFailure.SignatureFailure",
            "message": "The provided credentials could not be validated; check that the signature, the "
            "signed headers, the body and the credential date (the UTC date of X-TC-Timestamp) are correct.",
        },
        "unknownTask": {
            "code": "ResourceNotFound.TaskNotFound",
            "message": "The task `1-AigcImage-does-not-exist` does not exist.",
        },
        "longPrompt": {
            "code": "InvalidParameterValue",
            "message": "The value of parameter `Prompt` is invalid: it is 1001 characters long, over the "
            "limit of 1000.",
        },
    }
    assert [(t["TaskId"], t["Request"]) for t in mps_emulator.tasks()] == [
        (task_id, {"ModelName": "GEM", "Prompt": PROMPT})
    ]
    calls = [(r["Action"], r["ErrorCode"]) for r in mps_emulator.requests()]
    describes = len(calls) - 4
    assert describes >= 1
    assert calls == [
        ("CreateAigcImageTask", None),
        *[("DescribeAigcImageTask", None)] * describes,
        ("CreateAigcImageTask", "AuthFailure.SignatureFailure"),
        ("DescribeAigcImageTask", "ResourceNotFound.TaskNotFound"),
        ("CreateAigcImageTask", "InvalidParameterValue"),
    ]
