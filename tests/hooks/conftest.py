"""Fixtures for the hook tests: an isolated credential environment and real loopback network faults."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar, overload

import pytest

from airflow_provider_mps.version_compat import AIRFLOW_V_3_1_PLUS

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

_ServerT = TypeVar("_ServerT", bound="_LoopbackListener")

CREDENTIAL_ENV_VARS = (
    "TENCENTCLOUD_SECRET_ID",
    "TENCENTCLOUD_SECRET_KEY",
    "TKE_REGION",
    "TKE_PROVIDER_ID",
    "TKE_WEB_IDENTITY_TOKEN_FILE",
    "TKE_ROLE_ARN",
)


def describe_with(hook: Any, client: str, task_id: str) -> dict[str, Any]:
    """Describe ``task_id`` with the hook's ``"sync"`` client, or its ``"async"`` one (closed after)."""
    if client == "sync":
        return hook.describe_aigc_image_task(task_id)

    async def run() -> dict[str, Any]:
        try:
            return await hook.adescribe_aigc_image_task(task_id)
        finally:
            await hook.aclose()

    return asyncio.run(run())


def wait_for_requests(emulator: Any, count: int, within: float = 10.0) -> list[dict[str, Any]]:
    """
    Return the emulator's request log once it holds ``count`` requests.

    A request the client gave up on (a read timeout) is logged when the emulator finishes it,
    after its latency; waiting for it keeps it out of the next test's log.
    """
    deadline = time.monotonic() + within
    while len(requests := emulator.requests()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return requests


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
                body = service.answer(self.path)
                if body is None:
                    self.send_error(404)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                """Keep the test output free of access log lines."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def role_endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.base}"

    def answer(self, path: str) -> bytes | None:
        """The body answering a GET of ``path`` (the role name, or its keys), or None for a 404."""
        if path == self.base:
            return self.role.encode()
        if path != self.base + self.role:
            return None
        time.sleep(self.delay)
        self.served += 1
        return json.dumps(self.credentials).encode()

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


class _LoopbackListener:
    """
    A TCP listener on loopback serving each connection with :meth:`_handle` in a thread.

    :attr:`scheme` names the endpoint's scheme; :meth:`close` stops the thread and the socket.
    """

    scheme = "http"

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
        return f"{self.scheme}://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._handle(conn)

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


class LoopbackServer(_LoopbackListener):
    """
    A raw TCP server on loopback that misbehaves in one fixed way, for network-fault tests.

    :param behaviour: ``"close"`` accepts and closes without answering; ``"garbage"`` reads the
        request and answers bytes that are not HTTP; ``"record"`` keeps the first bytes of each
        request in :attr:`received` and closes without answering.
    """

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            if self.behaviour in ("garbage", "record"):
                try:
                    self.received.append(conn.recv(65536))
                    if self.behaviour == "garbage":
                        conn.sendall(b"this is not HTTP\r\n\r\n")
                except OSError:
                    pass


def _started_servers(make: Callable[[str], _ServerT]) -> Iterator[Callable[[str], _ServerT]]:
    """A fixture body: yield a starter of ``make(behaviour)`` servers, then close every one started."""
    servers: list[_ServerT] = []

    def start(behaviour: str) -> _ServerT:
        server = make(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def loopback_server() -> Iterator[Callable[[str], LoopbackServer]]:
    """Start :class:`LoopbackServer` instances for the test; all stop at teardown."""
    yield from _started_servers(LoopbackServer)


@pytest.fixture(scope="session")
def loopback_tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A CA and a certificate it signed for ``127.0.0.1``: ``(ca.pem, cert.pem, key.pem)``."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject: str, key: Any, issuer: str, signer: Any, *, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
        else:
            loopback = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(loopback, critical=False).add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_cert = certificate("MPS test CA", ca_key, "MPS test CA", ca_key, ca=True)
    cert = certificate("127.0.0.1", key, "MPS test CA", ca_key, ca=False)
    root = tmp_path_factory.mktemp("tls")
    paths = root / "ca.pem", root / "cert.pem", root / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class TlsFaultServer(_LoopbackListener):
    """
    An HTTPS server on loopback whose TLS fails in one fixed way, for network-fault tests.

    :param behaviour: ``"handshake"`` answers the client's TLS hello with bytes that are not TLS,
        so the handshake fails before any request is sent; ``"after_request"`` completes the
        handshake, reads the request (kept in :attr:`received`), then sends a TLS record that does
        not decrypt, so the client's TLS layer fails while reading the answer.
    :param certificate: ``(ca.pem, cert.pem, key.pem)`` from :func:`loopback_tls_certificate`.
    """

    scheme = "https"

    def __init__(self, behaviour: str, certificate: tuple[Path, Path, Path]) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate[1], certificate[2])
        super().__init__(behaviour)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(2)
        try:
            if self.behaviour == "handshake":
                conn.recv(65536)  # the client's hello
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            else:
                with self._context.wrap_socket(conn, server_side=True) as tls:
                    self.received.append(tls.recv(65536))
                    # An application-data record of 32 bytes that no key decrypts (bad MAC).
                    os.write(tls.fileno(), b"\x17\x03\x03\x00\x20" + os.urandom(32))
                    time.sleep(0.2)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.fixture
def tls_fault_server(
    loopback_tls_certificate: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], TlsFaultServer]]:
    """
    Start :class:`TlsFaultServer` instances whose certificate both SDK clients trust.

    Both clients verify against ``certifi.where()`` (the sync client's ``requests``, the async
    client's ``httpx`` unless ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` name others); for the test all
    of them name the loopback CA.
    """
    import certifi

    ca = str(loopback_tls_certificate[0])
    monkeypatch.setattr(certifi, "where", lambda: ca)
    monkeypatch.setenv("SSL_CERT_FILE", ca)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield from _started_servers(lambda behaviour: TlsFaultServer(behaviour, loopback_tls_certificate))


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
