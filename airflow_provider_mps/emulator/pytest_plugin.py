"""
Pytest fixtures running the MPS emulator; registered through the ``pytest11`` entry point.

* ``mps_emulator``: a handle on an emulator started once per session on a free loopback port,
  reset at the start of every test (tasks, requests, knobs).  Errors raised inside the emulator
  during the test are re-raised into it at teardown.
* ``mps_conn``: the same, with ``AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT`` pointing at it.
* ``mps_emulator_options`` (session): the server's options; override it in a ``conftest.py`` to
  change credentials, token or timing knobs for a whole test session.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

#: Defaults of the fixture's emulator: quicker than the CLI's, so tests finish fast.
FIXTURE_OPTIONS: dict[str, Any] = {"wait_seconds": 0.2, "run_seconds": 0.3}
CONNECTION_ENV = "AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT"


@dataclass(eq=False, repr=False)
class EmulatorHandle:
    """
    What a test sees of the running emulator.

    :param endpoint: base URL, e.g. ``http://127.0.0.1:54321``.
    :param secret_id: the SecretId it accepts.
    :param secret_key: that SecretId's SecretKey.
    :param token: the session token requests must carry, ``None`` when none.
    :param region: region written into :meth:`airflow_connection`.
    """

    endpoint: str
    secret_id: str
    secret_key: str
    token: str | None = None
    region: str = "ap-guangzhou"

    @classmethod
    def from_server(cls, server: ThreadedEmulatorServer) -> EmulatorHandle:
        """Return a handle on a started :class:`ThreadedEmulatorServer`."""
        return cls(
            endpoint=server.endpoint,
            secret_id=server.secret_id,
            secret_key=server.secret_key,
            token=server.token,
        )

    def __repr__(self) -> str:  # never show the secret key
        return f"EmulatorHandle(endpoint={self.endpoint!r}, secret_id={self.secret_id!r})"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise ValueError(f"The emulator refused {method} {path}: HTTP {exc.code} {detail}") from None

    def tasks(self) -> list[dict[str, Any]]:
        """Every created task, in creation order (``GET /_emulator/tasks``)."""
        return self._call("GET", "/_emulator/tasks")

    def requests(self) -> list[dict[str, Any]]:
        """Every API call received (``GET /_emulator/requests``)."""
        return self._call("GET", "/_emulator/requests")

    def downloads(self) -> list[dict[str, Any]]:
        """Every image download attempted (``GET /_emulator/downloads``)."""
        return self._call("GET", "/_emulator/downloads")

    def config(self) -> dict[str, Any]:
        """Every knob's current value (``GET /_emulator/config``)."""
        return self._call("GET", "/_emulator/config")

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change knobs at runtime (``POST /_emulator/config``); return every knob's new value."""
        return self._call("POST", "/_emulator/config", knobs)

    def reset(self) -> None:
        """Forget tasks, requests and quota use, restore the initial knobs (``POST /_emulator/reset``)."""
        self._call("POST", "/_emulator/reset", {})

    def force_status(self, task_id: str, status: str, message: str | None = None) -> dict[str, Any]:
        """Pin task ``task_id`` to ``status`` (with failure ``message`` for FAIL); return the task."""
        body: dict[str, Any] = {"Status": status}
        if message is not None:
            body["Message"] = message
        return self._call("POST", f"/_emulator/tasks/{task_id}/status", body)

    def airflow_connection(self) -> str:
        """Return the emulator's Airflow connection as JSON, for an ``AIRFLOW_CONN_<ID>`` variable."""
        extra: dict[str, Any] = {"endpoint": self.endpoint, "region": self.region}
        if self.token:
            extra["token"] = self.token
        return json.dumps(
            {
                "conn_type": "tencentcloud_mps",
                "login": self.secret_id,
                "password": self.secret_key,
                "extra": extra,
            }
        )


@pytest.fixture(scope="session")
def mps_emulator_options() -> dict[str, Any]:
    """Options of the session's emulator (see ``ThreadedEmulatorServer``); override to change them."""
    return dict(FIXTURE_OPTIONS)


@pytest.fixture(scope="session")
def mps_emulator_server(mps_emulator_options: dict[str, Any]) -> Iterator[ThreadedEmulatorServer]:
    """The session's emulator server, started once on a free loopback port."""
    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

    server = ThreadedEmulatorServer(port=0, **mps_emulator_options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mps_emulator(mps_emulator_server: ThreadedEmulatorServer) -> Iterator[EmulatorHandle]:
    """A freshly reset emulator; errors raised inside it during the test fail the test at teardown."""
    mps_emulator_server.backend.reset()
    yield EmulatorHandle.from_server(mps_emulator_server)
    errors = list(mps_emulator_server.backend.server_errors)
    if errors:
        raise errors[0]


@pytest.fixture
def mps_conn(mps_emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> EmulatorHandle:
    """The ``mps_emulator`` handle, with the default Airflow connection pointing at it."""
    monkeypatch.setenv(CONNECTION_ENV, mps_emulator.airflow_connection())
    return mps_emulator
