"""
State of the emulated service: accounts, tasks, their lifecycle, the rate limiter and the knobs.

Task status is derived from the clock: a task is ``WAIT`` for ``wait_seconds`` after creation,
then ``RUN`` for ``run_seconds``, then ``DONE`` (or ``FAIL``).  Tests can force any status.  With
a state file, tasks survive a restart of the emulator.
"""

from __future__ import annotations

import copy
import json
import os
import random
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mps.emulator.exceptions import RequestLimitExceededError, TaskNotFoundError
from airflow_provider_mps.emulator.images import CONTENT_TYPES, image_extension, render_image
from airflow_provider_mps.emulator.knobs import DOWNLOAD_ACTION, Knobs

STATUSES = ("WAIT", "RUN", "DONE", "FAIL")
#: Put this in a prompt to make the task end in FAIL.
FAIL_MARKER = "[emulator:fail]"
FAIL_MARKER_MESSAGE = "Image generation failed: the prompt asked the emulator to fail this task."
FAIL_RATE_MESSAGE = "Image generation failed: the task was picked by the emulator's fail_rate knob."
#: Most API calls kept in the request log (oldest dropped first).
REQUEST_LOG_LIMIT = 100_000


@dataclass
class Task:
    """One AIGC image task, in a JSON-friendly shape (it is what the state file stores)."""

    task_id: str
    secret_id: str
    created_at: float
    request: dict[str, Any]
    wait_seconds: float
    run_seconds: float
    outcome: str
    fail_message: str = ""
    forced_status: str | None = None
    forced_message: str = ""
    forced_at: float | None = None

    @property
    def image_count(self) -> int:
        """How many images the task produces once DONE."""
        return int(self.request.get("OutputImageCount") or 1)

    def status(self, now: float) -> str:
        """Return the status at time ``now``."""
        if self.forced_status is not None:
            return self.forced_status
        elapsed = now - self.created_at
        if elapsed < self.wait_seconds:
            return "WAIT"
        if elapsed < self.wait_seconds + self.run_seconds:
            return "RUN"
        return self.outcome

    def message(self, now: float) -> str:
        """Return the failure message, empty unless the task is FAIL."""
        if self.status(now) != "FAIL":
            return ""
        return self.forced_message if self.forced_status is not None else self.fail_message

    def done_at(self) -> float:
        """When the task became (or will become) DONE."""
        if self.forced_status is not None and self.forced_at is not None:
            return self.forced_at
        return self.created_at + self.wait_seconds + self.run_seconds


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class EmulatorBackend:
    """
    Everything the emulated service knows; thread-safe.

    :param credentials: SecretKey per SecretId of the accounts the emulator accepts.
    :param tokens: session token each SecretId must present (absent: it must present none).
    :param knobs: the initial knobs; :meth:`reset` returns to them.
    :param state_file: optional JSON file that persists tasks across restarts.
    """

    credentials: dict[str, str]
    tokens: dict[str, str] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)
    state_file: Path | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._initial_knobs = copy.deepcopy(self.knobs)
        self._tasks: dict[str, Task] = {}
        self._requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._downloads: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._images: dict[tuple[str, int], bytes] = {}
        self._random = random.Random(self.knobs.seed)
        self.server_errors: list[BaseException] = []
        if self.state_file is not None and Path(self.state_file).exists():
            self._load()

    # -- accounts ---------------------------------------------------------------------------

    def secret_key_for(self, secret_id: str) -> str | None:
        """Return the SecretKey of ``secret_id``, or ``None`` for an unknown SecretId."""
        return self.credentials.get(secret_id)

    def token_for(self, secret_id: str) -> str | None:
        """Return the token ``secret_id`` must present, or ``None`` if it takes none."""
        return self.tokens.get(secret_id)

    def now(self) -> float:
        """The server's clock (epoch seconds) as used for signature timestamps."""
        return time.time() + self.knobs.clock_offset_seconds

    # -- knobs and reset --------------------------------------------------------------------

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply knob ``changes`` (see :class:`Knobs`) and return every knob's new value."""
        with self._lock:
            self.knobs = self.knobs.updated(changes)
            if "seed" in changes:
                self._random = random.Random(self.knobs.seed)
            return asdict(self.knobs)

    def config(self) -> dict[str, Any]:
        """Return every knob's current value."""
        with self._lock:
            return asdict(self.knobs)

    def reset(self) -> None:
        """Forget tasks, logged requests, quota use and server errors; restore the initial knobs."""
        with self._lock:
            self.knobs = copy.deepcopy(self._initial_knobs)
            self._random = random.Random(self.knobs.seed)
            self._tasks.clear()
            self._requests.clear()
            self._downloads.clear()
            self._buckets.clear()
            self._images.clear()
            self.server_errors.clear()
            self._save()

    # -- faults and quota -------------------------------------------------------------------

    def chance(self, knob: str, action: str) -> bool:
        """Draw whether the probability knob ``knob`` fires for a call of ``action``."""
        with self._lock:
            rate = float(self.knobs.scoped(knob, action))
            return rate > 0 and self._random.random() < rate

    def injected_error_code(self, action: str) -> str | None:
        """Return the error code to inject into this call of ``action`` (burst first), or ``None``."""
        with self._lock:
            code = str(self.knobs.scoped("error_code", action))
            burst = self.knobs.error_burst
            if isinstance(burst, dict):
                key = action if action in burst else ("*" if action != DOWNLOAD_ACTION else None)
                if key is not None and burst.get(key, 0) > 0:
                    burst[key] -= 1
                    return code
            elif action != DOWNLOAD_ACTION and burst > 0:
                self.knobs.error_burst = burst - 1
                return code
        return code if self.chance("error_rate", action) else None

    def take_quota(self, secret_id: str, action: str) -> None:
        """
        Spend one request of ``secret_id``'s quota for ``action``.

        A token bucket per SecretId and action: it holds up to ``rate`` requests (at least one)
        and refills at ``rate`` per second, so bursts up to the quota pass and sustained traffic
        above it is refused.

        :raises RequestLimitExceededError: when the bucket is empty.
        """
        with self._lock:
            rate = self.knobs.rate_limit
            if rate <= 0:
                return
            capacity = max(1.0, rate)
            now = time.monotonic()
            bucket = self._buckets.setdefault((secret_id, action), _Bucket(tokens=capacity, updated=now))
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1:
                raise RequestLimitExceededError(action, rate)
            bucket.tokens -= 1

    # -- request log ------------------------------------------------------------------------

    def record_request(
        self,
        *,
        action: str,
        secret_id: str | None,
        received_at: float,
        error_code: str | None,
        request_id: str,
        fault: str | None,
    ) -> None:
        """Append one API call to the request log."""
        with self._lock:
            self._requests.append(
                {
                    "Action": action,
                    "SecretId": secret_id,
                    "Time": received_at,
                    "ErrorCode": error_code,
                    "RequestId": request_id,
                    "Fault": fault,
                }
            )

    def requests(self) -> list[dict[str, Any]]:
        """Every API call received, oldest first."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def record_download(self, entry: dict[str, Any]) -> None:
        """Append one image download (TaskId, Path, Time, StatusCode, Fault) to the download log."""
        with self._lock:
            self._downloads.append(entry)

    def downloads(self) -> list[dict[str, Any]]:
        """Every image download attempted, oldest first."""
        with self._lock:
            return [dict(d) for d in self._downloads]

    # -- tasks ------------------------------------------------------------------------------

    def create_task(self, secret_id: str, request: dict[str, Any]) -> str:
        """Create a task from already validated CreateAigcImageTask ``request``; return its TaskId."""
        with self._lock:
            if FAIL_MARKER in str(request.get("Prompt") or ""):
                outcome, message = "FAIL", FAIL_MARKER_MESSAGE
            elif self.knobs.fail_rate > 0 and self._random.random() < self.knobs.fail_rate:
                outcome, message = "FAIL", FAIL_RATE_MESSAGE
            else:
                outcome, message = "DONE", ""
            task = Task(
                task_id=f"1-AigcImage-{uuid.uuid4().hex}",
                secret_id=secret_id,
                created_at=time.time(),
                request=copy.deepcopy(request),
                wait_seconds=self.knobs.wait_seconds,
                run_seconds=self.knobs.run_seconds,
                outcome=outcome,
                fail_message=message,
            )
            self._tasks[task.task_id] = task
            self._save()
            return task.task_id

    def describe_task(self, secret_id: str, task_id: str, base_url: str) -> dict[str, Any]:
        """
        Return the DescribeAigcImageTask fields of ``task_id`` as ``secret_id`` sees it.

        :raises TaskNotFoundError: when the task does not exist or belongs to another account.
        """
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None or task.secret_id != secret_id:
                raise TaskNotFoundError(task_id)
            return self._view(task, base_url, time.time())

    def _view(self, task: Task, base_url: str, now: float) -> dict[str, Any]:
        status = task.status(now)
        urls = []
        if status == "DONE":
            ext = image_extension(task.request)
            urls = [f"{base_url}/images/{task.task_id}/{i}.{ext}" for i in range(task.image_count)]
        return {"Status": status, "ImageUrls": urls, "Message": task.message(now)}

    def tasks(self, base_url: str) -> list[dict[str, Any]]:
        """Every task in creation order, with the request parameters exactly as received."""
        with self._lock:
            now = time.time()
            listed = []
            for task in self._tasks.values():
                view = self._view(task, base_url, now)
                listed.append(
                    {
                        "TaskId": task.task_id,
                        "Status": view["Status"],
                        "SecretId": task.secret_id,
                        "CreatedAt": task.created_at,
                        "Request": copy.deepcopy(task.request),
                        "ImageUrls": view["ImageUrls"],
                        "Message": view["Message"],
                    }
                )
            return listed

    def force_status(self, task_id: str, status: str, message: str | None = None) -> None:
        """
        Pin ``task_id`` to ``status`` from now on (``message`` is its failure message for FAIL).

        :raises TaskNotFoundError: for an unknown task.
        :raises ValueError: for a status that is not WAIT, RUN, DONE or FAIL.
        """
        if status not in STATUSES:
            raise ValueError(f"Status {status!r} is not one of {', '.join(STATUSES)}.")
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            task.forced_status = status
            task.forced_message = (
                message if message is not None else ("Forced to FAIL by a test." if status == "FAIL" else "")
            )
            task.forced_at = time.time()
            self._save()

    def image(self, task_id: str, index: int, ext: str) -> tuple[bytes, str] | None:
        """Return ``(bytes, content type)`` of one image of a DONE task, ``None`` if absent or expired."""
        with self._lock:
            task = self._tasks.get(task_id)
            now = time.time()
            if (
                task is None
                or task.status(now) != "DONE"
                or not 0 <= index < task.image_count
                or ext != image_extension(task.request)
                or now > task.done_at() + self.knobs.image_ttl_seconds
            ):
                return None
            key = (task_id, index)
            if key not in self._images:
                self._images[key] = render_image(task.request, index)
            return self._images[key], CONTENT_TYPES[ext]

    # -- persistence ------------------------------------------------------------------------

    def _save(self) -> None:
        if self.state_file is None:
            return
        path = Path(self.state_file)
        data = {"version": 1, "tasks": [asdict(t) for t in self._tasks.values()]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
        os.replace(tmp, path)

    def _load(self) -> None:
        assert self.state_file is not None
        data = json.loads(Path(self.state_file).read_text(encoding="utf-8"))
        for item in data.get("tasks", []):
            task = Task(**item)
            self._tasks[task.task_id] = task
