"""
No provider code blocks the triggerer's event loop: asyncio's slow-callback detection, under load.

One process runs one ``MpsAigcImageTaskTrigger`` per task in one event loop, as Airflow's triggerer
does, with asyncio's debug mode on (``PYTHONASYNCIODEBUG=1``): the loop logs every callback that
runs longer than ``loop.slow_callback_duration`` (:data:`SLOW_CALLBACK_SECONDS`).  A sampling
thread records the loop thread's stack meanwhile, so each slow callback is reported with the code
it was running: the worst one is printed at the end of the session (``LOAD_REPORT``).

The triggers sign with a CVM role's temporary keys, the credential whose refresh is a blocking
HTTP call inside the SDK: the loopback metadata service hands out keys that come due a few
seconds into the run and answers the refresh slowly (:data:`REFRESH_SECONDS`), as a busy metadata
service can.  Before the fix the refresh ran on the event loop while a request was signed (and
the SDK async client loaded its CA bundle there); now both run in worker threads.  The test
fails if any callback running provider code (the trigger, the hook, the SDK, httpx) blocked the
loop for :data:`BLOCKING_BOUND_SECONDS` or more.

The process is this module itself (``python -m tests.load.test_event_loop_lag <spec> <out>``).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
QUOTA = 20
DESCRIBE = "DescribeAigcImageTask"
TRIGGERS = 100
POLL_INTERVAL = 2.0
#: The tasks turn DONE once the emulator has answered this many describes (a few rounds).
DONE_AFTER = 300
#: The role's first keys come due (the SDK refreshes keys within 300 s of expiry) this long after
#: the triggerer process starts, while the triggers are polling.
REFRESH_DUE_AFTER = 6.0
#: How long the metadata service takes to answer that refresh.
REFRESH_SECONDS = 0.3
#: asyncio reports callbacks that run longer than this.
SLOW_CALLBACK_SECONDS = 0.02
#: No callback running provider code may block the loop this long (generous: a describe's own
#: work on the loop takes well under a millisecond, a GC pass or a busy machine some more).
BLOCKING_BOUND_SECONDS = 0.2
#: Seconds between two samples of the loop thread's stack.
SAMPLE_EVERY = 0.004
#: Where a frame of the loop thread's stack counts as provider code.
PROVIDER_PATHS = ("/airflow_provider_mps/", "/tencentcloud/", "/httpx/", "/httpcore/")
#: Frames of asyncio's debug mode itself: it captures a traceback for every new handle, future and
#: task (reading each source file into ``linecache`` the first time).  Time spent there is the
#: measurement's own cost, whoever asked for the future.
DEBUG_MODE_PATHS = ("/asyncio/format_helpers.py", "/traceback.py", "/linecache.py")

SECRET_ID = "AKIDLOOPLAGROLE00000000000000000000000"
SECRET_KEY = "loop-lag-role-key-0000000000000000"
TOKEN = "loop-lag-role-token-00000000000000"
ROLE = "mps-loop-lag-role"


# -- the triggerer process ----------------------------------------------------------------------


class SlowCallbacks(logging.Handler):
    """Keep asyncio's ``Executing <handle> took N seconds`` reports (debug mode)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reports: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if str(record.msg).startswith("Executing ") and isinstance(record.args, tuple):
            handle, seconds = record.args
            self.reports.append(
                {"handle": str(handle)[:300], "seconds": float(seconds), "at": record.created}
            )


class StackSampler(threading.Thread):
    """Record the event loop thread's stack every :data:`SAMPLE_EVERY` seconds: ``(time, frames)``."""

    def __init__(self, loop_thread: int) -> None:
        super().__init__(name="loop-stack-sampler", daemon=True)
        self.loop_thread = loop_thread
        self.samples: collections.deque[tuple[float, tuple[str, ...]]] = collections.deque(maxlen=100_000)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            frame = sys._current_frames().get(self.loop_thread)
            frames = []
            while frame is not None and len(frames) < 60:
                code = frame.f_code
                frames.append(f"{code.co_filename}:{frame.f_lineno} {code.co_name}")
                frame = frame.f_back
            self.samples.append((time.time(), tuple(frames)))


def _in(frames: tuple[str, ...], paths: tuple[str, ...]) -> bool:
    return any(path in frame for frame in frames for path in paths)


def blocking_calls(reports: list[dict[str, Any]], samples: list[tuple[float, tuple[str, ...]]]) -> list[dict]:
    """
    Each slow callback with what the loop thread ran meanwhile, the most provider time first.

    Each stack sampled during the callback counts as provider code (a frame of
    :data:`PROVIDER_PATHS`, outside asyncio's debug-mode bookkeeping), debug mode, or other code.
    ``provider_seconds`` is the callback's time in the provider's share of its samples (all of it
    for a trigger's step nobody sampled); ``stack`` is the most often sampled provider stack, else
    the most often sampled one.
    """
    found = []
    for report in reports:
        start = report["at"] - report["seconds"]
        stacks = [frames for at, frames in samples if start <= at <= report["at"] and frames]
        ours = [
            frames for frames in stacks if _in(frames, PROVIDER_PATHS) and not _in(frames, DEBUG_MODE_PATHS)
        ]
        unsampled = 1.0 if "mps-trigger-" in report["handle"] else 0.0
        share = len(ours) / len(stacks) if stacks else unsampled
        common = collections.Counter(ours or stacks).most_common(1)
        stack = common[0][0] if common else ()
        provider_frames = [frame for frame in stack if any(path in frame for path in PROVIDER_PATHS)]
        found.append(
            {
                **report,
                "provider_seconds": report["seconds"] * share,
                "samples": len(stacks),
                "innermost": stack[0] if stack else None,
                "provider_frame": provider_frames[0] if provider_frames else None,
                "stack": list(stack[:15]),
            }
        )
    return sorted(found, key=lambda call: (call["provider_seconds"], call["seconds"]), reverse=True)


async def run_trigger(trigger: Any, events: list[dict[str, Any]]) -> None:
    try:
        import greenback  # the portal Airflow's triggerer gives each trigger

        await greenback.ensure_portal()
    except ImportError:  # pragma: no cover - greenback comes with Airflow 3
        pass
    try:
        async for event in trigger.run():
            events.append(event.payload)
            break
    finally:
        await trigger.cleanup()


async def watch_lag(stats: dict[str, float], done: asyncio.Event) -> None:
    """How late the loop wakes a 0.1 s sleep, as the triggerer's block watchdog measures."""
    while not done.is_set():
        started = time.monotonic()
        await asyncio.sleep(0.1)
        stats["max_loop_lag"] = max(stats["max_loop_lag"], time.monotonic() - started - 0.1)


async def triggerer(spec: dict[str, Any], trigger_class: type) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    loop.slow_callback_duration = SLOW_CALLBACK_SECONDS
    # A cyclic garbage collection pauses whichever callback allocates at the time: it is not a
    # blocking call, and it is left out (collected after the run).
    gc.disable()
    slow = SlowCallbacks()
    logging.getLogger("asyncio").addHandler(slow)
    sampler = StackSampler(threading.get_ident())
    sampler.start()
    started = time.time()
    events: list[dict[str, Any]] = []
    stats = {"max_loop_lag": 0.0}
    done = asyncio.Event()
    watcher = asyncio.create_task(watch_lag(stats, done), name="harness-watch-lag")
    # Creating the 100 tasks in debug mode captures a traceback for each (over a second on a busy
    # machine): the harness's cost, not the triggers'.  Debug mode is back on before they run.
    loop.set_debug(False)
    tasks = [
        asyncio.create_task(
            run_trigger(
                trigger_class(
                    mps_task_id=task_id,
                    mps_conn_id="tencentcloud_mps_default",
                    poll_interval=spec["poll_interval"],
                    end_time=started + spec["timeout"],
                ),
                events,
            ),
            name=f"mps-trigger-{n}",
        )
        for n, task_id in enumerate(spec["mps_task_ids"])
    ]
    loop.set_debug(True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    done.set()
    await watcher
    gc.enable()
    sampler.stop.set()
    sampler.join()
    return {
        "events": events,
        "errors": [repr(result) for result in results if isinstance(result, BaseException)],
        "started": started,
        "finished": time.time(),
        "max_loop_lag": stats["max_loop_lag"],
        "blocking_calls": blocking_calls(slow.reports, list(sampler.samples))[:20],
        "slow_callbacks": len(slow.reports),
    }


def main(spec_path: str, out_path: str) -> None:
    from tencentcloud.common.credential import CVMRoleCredential

    # The triggerer imports the trigger's class before running it.
    from airflow_provider_mps.triggers.mps import MpsAigcImageTaskTrigger

    spec = json.loads(Path(spec_path).read_text())
    CVMRoleCredential._role_endpoint = spec["role_endpoint"]  # the loopback metadata service
    outcome = asyncio.run(triggerer(spec, MpsAigcImageTaskTrigger), debug=True)
    Path(out_path).write_text(json.dumps(outcome))


# -- the test -----------------------------------------------------------------------------------


class MetadataService:
    """
    The CVM metadata service for one role, on loopback: keys that come due at ``due_at``.

    Until then it answers with keys expiring 300 s after ``due_at`` (the SDK refreshes keys within
    300 s of expiry); from then on, after :data:`REFRESH_SECONDS`, with keys valid for an hour.
    """

    def __init__(self) -> None:
        self.due_at = time.time() + 3600
        self.refreshes = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                base = "/latest/meta-data/cam/security-credentials/"
                if self.path == base:
                    body = ROLE.encode()
                elif self.path == base + ROLE:
                    expires = service.due_at + 300
                    if time.time() >= service.due_at:
                        service.refreshes += 1
                        time.sleep(REFRESH_SECONDS)
                        expires = time.time() + 3600
                    keys = {"TmpSecretId": SECRET_ID, "TmpSecretKey": SECRET_KEY, "Token": TOKEN}
                    body = json.dumps({"Code": "Success", **keys, "ExpiredTime": int(expires)}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def role_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/latest/meta-data/cam/security-credentials/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def lag_run(airflow_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Create the tasks, run the triggerer process in asyncio debug mode, return its outcome."""
    from airflow_provider_mps.emulator.pytest_plugin import CONNECTION_ENV, EmulatorHandle
    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer
    from airflow_provider_mps.hooks.mps import MpsHook

    root = tmp_path_factory.mktemp("event-loop-lag")
    home = root / "home"
    home.mkdir()
    metadata = MetadataService()
    server = ThreadedEmulatorServer(
        port=0,
        rate_limit=0,
        wait_seconds=1,
        run_seconds=3600,
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        token=TOKEN,
    )
    server.start()
    try:
        emulator = EmulatorHandle.from_server(server)
        os.environ[CONNECTION_ENV] = emulator.airflow_connection()
        try:
            hook = MpsHook()
            with ThreadPoolExecutor(max_workers=8) as pool:
                task_ids = list(
                    pool.map(lambda n: hook.create_aigc_image_task(prompt=f"lag {n}"), range(TRIGGERS))
                )
        finally:
            del os.environ[CONNECTION_ENV]
        emulator.configure(rate_limit=QUOTA)
        finisher = threading.Thread(target=_finish_after, args=(server, task_ids), daemon=True)
        finisher.start()
        spec = {
            "mps_task_ids": task_ids,
            "poll_interval": POLL_INTERVAL,
            "timeout": 600,
            "role_endpoint": metadata.role_endpoint,
        }
        (root / "spec.json").write_text(json.dumps(spec))
        # No keys on the connection: the hook finds the CVM role through the credential chain.
        connection = {"conn_type": "tencentcloud_mps", "extra": {"endpoint": emulator.endpoint}}
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("TENCENTCLOUD_", "TKE_", "AIRFLOW_CONN_"))
        }
        env.update(
            {
                CONNECTION_ENV: json.dumps(connection),
                "HOME": str(home),  # no profile file
                "NO_PROXY": "127.0.0.1,localhost",
                "PYTHONASYNCIODEBUG": "1",
            }
        )
        metadata.due_at = time.time() + REFRESH_DUE_AFTER
        with (root / "triggerer.log").open("w") as log:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.load.test_event_loop_lag",
                    str(root / "spec.json"),
                    str(root / "out.json"),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=900,
                check=True,
            )
        finisher.join(timeout=30)
        outcome = json.loads((root / "out.json").read_text())
        outcome["task_ids"] = task_ids
        outcome["refreshes"] = metadata.refreshes
        outcome["describes"] = [r for r in emulator.requests() if r["Action"] == DESCRIBE]
    finally:
        server.stop()
        metadata.close()
    _report(outcome)
    return outcome


def _finish_after(server: Any, task_ids: list[str]) -> None:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if sum(r["Action"] == DESCRIBE for r in server.backend.requests()) >= DONE_AFTER:
            break
        time.sleep(0.2)
    for task_id in task_ids:
        server.backend.force_status(task_id, "DONE")


def _worst(outcome: dict[str, Any], provider: bool) -> dict[str, Any] | None:
    """The slow callback with the most provider time, or the slowest one with none."""
    calls = [call for call in outcome["blocking_calls"] if (call["provider_seconds"] > 0) == provider]
    return max(calls, key=lambda call: call["provider_seconds" if provider else "seconds"], default=None)


def _shown(call: dict[str, Any] | None) -> str:
    """``0.031 s (0.027 s provider) in <file:line function> (task <name>)``."""
    if call is None:
        return f"none over {SLOW_CALLBACK_SECONDS} s"
    where = (call["provider_frame"] or call["innermost"] or "(no sample)").replace(str(REPO_ROOT) + "/", "")
    task = re.search(r"name='([^']+)'", call["handle"])
    whose = f"task {task.group(1)}" if task else call["handle"][:60]
    return f"{call['seconds']:.3f} s ({call['provider_seconds']:.3f} s provider) in {where} ({whose})"


def _report(outcome: dict[str, Any]) -> None:
    from tests.load.conftest import LOAD_REPORT

    LOAD_REPORT.append(
        {
            "event loop (asyncio debug, slow callback > 0.02 s)": (
                f"{TRIGGERS} triggers, role keys refreshed {outcome['refreshes']}x ({REFRESH_SECONDS} s each)"
            ),
            "slow callbacks reported": outcome["slow_callbacks"],
            "worst blocking call, provider code": _shown(_worst(outcome, True)),
            # The harness creating the tasks, and asyncio's debug mode capturing their tracebacks.
            "worst blocking call, other code": _shown(_worst(outcome, False)),
            "worst event-loop lag (s), 0.1 s watchdog": round(outcome["max_loop_lag"], 3),
        }
    )


def test_every_trigger_fires_its_success_event_after_the_role_keys_were_refreshed(lag_run):
    assert lag_run["errors"] == []
    assert sorted(event["mps_task_id"] for event in lag_run["events"]) == sorted(lag_run["task_ids"])
    assert {event["status"] for event in lag_run["events"]} == {"success"}
    # The keys came due while the triggers polled, and were refreshed (once, or a few times when
    # several refreshes started together).
    assert lag_run["refreshes"] >= 1
    assert [r["ErrorCode"] for r in lag_run["describes"] if r["ErrorCode"]] == []


def test_no_provider_code_blocks_the_event_loop(lag_run):
    worst = _worst(lag_run, provider=True)

    assert worst is None or worst["provider_seconds"] < BLOCKING_BOUND_SECONDS, (
        _shown(worst),
        worst["stack"],
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
