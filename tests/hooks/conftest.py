"""Fixtures for the hook tests: an isolated credential environment and real loopback network faults."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, overload

import pytest

from airflow_provider_mps.version_compat import AIRFLOW_V_3_1_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

CREDENTIAL_ENV_VARS = (
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TKE_REGION",
    "TKE_PROVIDER_ID",
    "TKE_WEB_IDENTITY_TOKEN_FILE",
    "TKE_ROLE_ARN",
)


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port_endpoint() -> str:
    """An http:// endpoint on loopback where nothing listens: every connection is refused."""
    return f"http://127.0.0.1:{closed_loopback_port()}"


@pytest.fixture(autouse=True)
def isolated_credential_chain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """
    Keep the Tencent Cloud credential chain on this machine's loopback and out of the user's files.

    No credential environment variables, a fresh empty home for the profile file, and the CVM
    role probe aimed at a closed loopback port instead of the metadata IP.  Returns the home.
    """
    from tencentcloud.common.credential import CVMRoleCredential

    for name in CREDENTIAL_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    port = closed_loopback_port()
    monkeypatch.setattr(
        CVMRoleCredential,
        "_role_endpoint",
        f"http://127.0.0.1:{port}/latest/meta-data/cam/security-credentials/",
    )
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return home


@pytest.fixture
def set_connection(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """
    Define an Airflow connection through an ``AIRFLOW_CONN_<ID>`` variable and return its id.

    Call it as ``set_connection("mps_x", login=..., password=..., extra={...})``.
    """

    def define(conn_id: str, **fields: Any) -> str:
        value = json.dumps({"conn_type": "tencentcloud_mps", **fields})
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
        return conn_id

    return define


@pytest.fixture
def emulator_connection(mps_emulator: Any, set_connection: Callable[..., str]) -> Callable[..., str]:
    """Define a connection to the test's emulator; keyword arguments override fields and extras."""

    def define(conn_id: str = "mps_test", *, extra: dict[str, Any] | None = None, **fields: Any) -> str:
        values = {"login": mps_emulator.secret_id, "password": mps_emulator.secret_key, **fields}
        extras = {"endpoint": mps_emulator.endpoint, "region": "ap-guangzhou", **(extra or {})}
        return set_connection(conn_id, extra=extras, **values)

    return define


class CvmMetadataService:
    """
    A stand-in for the CVM instance metadata service on loopback, handing out a role's temporary keys.

    It names the role ``mps-airflow-role`` and answers with the keys of the last :meth:`hand_out`
    (none before), after :attr:`delay` seconds; :attr:`served` counts the keys it handed out.
    """

    role = "mps-airflow-role"
    base = "/latest/meta-data/cam/security-credentials/"

    def __init__(self) -> None:
        self.credentials: dict[str, Any] = {"Code": "Failure"}
        self.delay = 0.0
        self.served = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == service.base:
                    body = service.role.encode()
                elif self.path == service.base + service.role:
                    time.sleep(service.delay)
                    service.served += 1
                    body = json.dumps(service.credentials).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def role_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.base}"

    def hand_out(self, secret_id: str, secret_key: str, token: str, *, expires_in: float = 3600) -> None:
        """
        Answer with these keys from now on, expiring ``expires_in`` seconds from now.

        The SDK refreshes keys that expire within 300 seconds before every use.
        """
        self.credentials = {
            "Code": "Success",
            "TmpSecretId": secret_id,
            "TmpSecretKey": secret_key,
            "Token": token,
            "ExpiredTime": int(time.time() + expires_in),
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)


@pytest.fixture
def cvm_metadata_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[CvmMetadataService]:
    """A CVM metadata service on loopback that the SDK's CVM role credential asks (no keys yet)."""
    from tencentcloud.common.credential import CVMRoleCredential

    service = CvmMetadataService()
    monkeypatch.setattr(CVMRoleCredential, "_role_endpoint", service.role_endpoint)
    yield service
    service.close()


class LoopbackServer:
    """
    A raw TCP server on loopback that misbehaves in one fixed way, for network-fault tests.

    :param behaviour: ``"close"`` accepts and closes without answering; ``"garbage"`` reads the
        request and answers bytes that are not HTTP; ``"record"`` keeps the first bytes of each
        request in :attr:`received` and closes without answering.
    """

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.accepted = 0
        self.received: list[bytes] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            with conn:
                conn.settimeout(2)
                if self.behaviour in ("garbage", "record"):
                    try:
                        self.received.append(conn.recv(65536))
                        if self.behaviour == "garbage":
                            conn.sendall(b"this is not HTTP\r\n\r\n")
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def loopback_server() -> Iterator[Callable[[str], LoopbackServer]]:
    """Start :class:`LoopbackServer` instances for the test; all stop at teardown."""
    servers: list[LoopbackServer] = []

    def start(behaviour: str) -> LoopbackServer:
        server = LoopbackServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


#: The logger every hook of the provider logs under (``BaseHook`` names it after the class).
HOOK_LOGGER = "airflow.task.hooks.airflow_provider_mps."


class HookLogs(Sequence[dict[str, Any]]):
    """The records the provider's hooks logged so far, ``{"event", "log_level", ...}``, oldest first."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self._records = records

    def _ours(self) -> list[dict[str, Any]]:
        return [record for record in self._records if str(record.get("logger", "")).startswith(HOOK_LOGGER)]

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | Sequence[dict[str, Any]]:
        return self._ours()[index]

    def __len__(self) -> int:
        return len(self._ours())

    def __repr__(self) -> str:
        return repr(self._ours())


class _RecordList(logging.Handler):
    """A stdlib handler keeping each record as structlog's ``capture_logs`` would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(
            {"event": record.getMessage(), "log_level": record.levelname.lower(), "logger": record.name}
        )


@pytest.fixture
def hook_logs() -> Iterator[HookLogs]:
    """
    What the provider's hooks logged during the test, on every Airflow line.

    From Airflow 3.1 a hook logs through structlog; before, through a stdlib logger.  Either way
    only the hooks' own records are kept, not Airflow's.
    """
    if AIRFLOW_V_3_1_PLUS:
        import structlog

        with structlog.testing.capture_logs(processors=[structlog.stdlib.add_logger_name]) as records:
            yield HookLogs(records)
        return
    handler = _RecordList()
    logger = logging.getLogger(HOOK_LOGGER.rstrip("."))
    logger.addHandler(handler)
    try:
        yield HookLogs(handler.records)
    finally:
        logger.removeHandler(handler)
