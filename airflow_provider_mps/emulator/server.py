"""
Run the emulator in-process or as the ``mps-emulator`` console script.

In-process it runs on a background thread (:class:`ThreadedEmulatorServer`, like moto's
``ThreadedMotoServer``); :func:`main` is the console script.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_mps.emulator.knobs import SCOPED_KNOBS, Knobs
from airflow_provider_mps.emulator.models import EmulatorBackend
from airflow_provider_mps.emulator.responses import TRANSPORT_EXTENSION, create_app

if TYPE_CHECKING:
    from collections.abc import Sequence

    import uvicorn

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9100
DEFAULT_SECRET_ID = "AKIDMPSEMULATOR0000000000000000000000"
DEFAULT_SECRET_KEY = "mps-emulator-secret-key-00000000"
#: Seconds an idle keep-alive connection stays open; long, so clients never reuse a half-closed one.
KEEP_ALIVE_SECONDS = 300
STARTUP_TIMEOUT_SECONDS = 10.0
#: The knobs that take one value, as command-line options (``--rate-limit`` ...): their help.
PLAIN_KNOB_OPTIONS = {
    "rate_limit": "requests per second per SecretId and action; 0 disables",
    "wait_seconds": "time a task stays WAIT",
    "run_seconds": "time a task then stays RUN",
    "fail_rate": "probability a task ends FAIL",
    "image_ttl_seconds": "seconds image URLs answer after DONE",
    "clock_offset_seconds": "added to the clock used to check request timestamps",
    "seed": "seed of the random fault choices",
}


def _transport_exposing_protocol() -> type[asyncio.Protocol]:
    """
    Return uvicorn's HTTP protocol class, extended to expose each connection's transport.

    The app finds the transport in ``scope["extensions"][TRANSPORT_EXTENSION]`` and can abort
    it: an ASGI app alone can only answer (an exception becomes an HTTP 500), never drop a
    connection the way a failing network does.
    """
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - httptools is optional for uvicorn
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    class TransportExposingProtocol(Base):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            inner = self.app

            async def app(scope: Any, receive: Any, send: Any) -> None:
                scope.setdefault("extensions", {})[TRANSPORT_EXTENSION] = transport
                await inner(scope, receive, send)

            self.app = app

    return TransportExposingProtocol


def endpoint_url(host: str, port: int) -> str:
    """Return the base URL of a server on ``host``:``port``, e.g. ``http://[::1]:9100``."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host``:``port`` (``0`` picks a free port) and return the socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def build_server(
    backend: EmulatorBackend, *, public_url: str | None = None, log_level: str = "warning"
) -> uvicorn.Server:
    """Return a uvicorn server (not started) serving the emulator app for ``backend``."""
    import uvicorn

    config = uvicorn.Config(
        create_app(backend, public_url),
        http=_transport_exposing_protocol(),
        loop="asyncio",
        lifespan="off",
        log_level=log_level,
        access_log=log_level in ("debug", "trace"),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def make_backend(
    *,
    secret_id: str = DEFAULT_SECRET_ID,
    secret_key: str = DEFAULT_SECRET_KEY,
    token: str | None = None,
    extra_credentials: dict[str, str] | None = None,
    state_file: str | os.PathLike[str] | None = None,
    **knobs: Any,
) -> EmulatorBackend:
    """
    Return a backend accepting ``secret_id``/``secret_key`` (plus ``extra_credentials``).

    :param token: the session token ``secret_id`` must present; ``None``: it must present none.
    :param extra_credentials: more accounts, SecretKey per SecretId, e.g. to test per-account quotas.
    :param state_file: JSON file tasks are saved to and restored from.
    :param knobs: initial :class:`~airflow_provider_mps.emulator.models.Knobs` values.
    """
    credentials = {secret_id: secret_key, **(extra_credentials or {})}
    return EmulatorBackend(
        credentials=credentials,
        tokens={secret_id: token} if token else {},
        knobs=Knobs().updated(knobs),
        state_file=Path(state_file) if state_file else None,
    )


class ThreadedEmulatorServer:
    """
    The emulator on a background thread of this process, for tests and notebooks.

    Usage::

        with ThreadedEmulatorServer(port=0, wait_seconds=0.2) as server:
            print(server.endpoint)

    :param host: address to bind, loopback by default.
    :param port: port to bind; ``0`` picks a free one (see :attr:`port` once started).
    :param public_url: base URL of image links; default: as the client addressed the emulator.
    :param backend_options: passed to :func:`make_backend` (credentials, token, state file, knobs).
    """

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        public_url: str | None = None,
        **backend_options: Any,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.public_url = public_url
        self.secret_id: str = backend_options.get("secret_id", DEFAULT_SECRET_ID)
        self.secret_key: str = backend_options.get("secret_key", DEFAULT_SECRET_KEY)
        self.token: str | None = backend_options.get("token")
        self.backend = make_backend(**backend_options)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (or last listened on, once stopped)."""
        if self._port is None:
            raise RuntimeError("The emulator is not started; call start() first.")
        return self._port

    @property
    def endpoint(self) -> str:
        """Base URL of the emulator, e.g. ``http://127.0.0.1:54321``."""
        return endpoint_url(self.host, self.port)

    def start(self) -> None:
        """
        Start serving and return once the emulator accepts connections.

        :raises RuntimeError: when the server did not come up within a few seconds.
        """
        if self._thread is not None:
            raise RuntimeError("The emulator is already started.")
        self._socket = bind_socket(self.host, self.requested_port)
        self._port = int(self._socket.getsockname()[1])
        self._server = build_server(self.backend, public_url=self.public_url)
        self._thread = threading.Thread(target=self._run, name=f"mps-emulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                raise RuntimeError(f"The MPS emulator failed to start: {self._failure!r}") from self._failure
            deadline -= 0.01
            if deadline <= 0:
                raise RuntimeError(
                    f"The MPS emulator did not start within {STARTUP_TIMEOUT_SECONDS} seconds."
                )
            threading.Event().wait(0.01)

    def _run(self) -> None:
        assert self._server is not None
        assert self._socket is not None
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start() / stop()
            self._failure = exc
        finally:
            loop.close()

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
        self._server, self._thread, self._socket = None, None, None

    def __enter__(self) -> ThreadedEmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# -- the console script ------------------------------------------------------------------------


def _scoped_value(text: str) -> Any:
    """Parse ``0.5`` or ``Action=0.5`` (one ``--flag`` occurrence) into a number or a pair."""
    action, sep, value = text.rpartition("=")
    return (action, _number(value)) if sep else _number(text)


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def build_parser() -> argparse.ArgumentParser:
    """Return the ``mps-emulator`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="mps-emulator",
        description="Local emulator of Tencent Cloud MPS AIGC image generation (API 3.0, TC3-HMAC-SHA256).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind; anything but loopback is exposed"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--secret-id",
        default=os.environ.get("MPS_EMULATOR_SECRET_ID", DEFAULT_SECRET_ID),
        help="SecretId the emulator accepts (env MPS_EMULATOR_SECRET_ID)",
    )
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("MPS_EMULATOR_SECRET_KEY", DEFAULT_SECRET_KEY),
        help="SecretKey of that SecretId (env MPS_EMULATOR_SECRET_KEY)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("MPS_EMULATOR_TOKEN"),
        help="session token requests must carry (env MPS_EMULATOR_TOKEN); none by default",
    )
    parser.add_argument("--state-file", default=None, help="JSON file that keeps tasks across restarts")
    parser.add_argument(
        "--public-url",
        default=None,
        help="base URL of image links (default: as the client addressed the emulator)",
    )
    _add_knob_options(parser)
    parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    return parser


def _add_knob_options(parser: argparse.ArgumentParser) -> None:
    """
    Add an option per knob, its default the :class:`Knobs` one.

    :param parser: the ``mps-emulator`` parser.
    """
    defaults = Knobs()
    for name, help_text in PLAIN_KNOB_OPTIONS.items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int if name == "seed" else float,
            default=getattr(defaults, name),
            help=help_text,
        )
    for name in SCOPED_KNOBS:
        parser.add_argument(
            "--" + name.replace("_", "-"),
            action="append",
            type=_scoped_value,
            default=None,
            metavar="[ACTION=]VALUE",
            help=f"fault knob (default {getattr(defaults, name)!r}); repeat with ACTION= to scope it",
        )


def knobs_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the knob values given on the command line."""
    knobs: dict[str, Any] = {name: getattr(args, name) for name in PLAIN_KNOB_OPTIONS}
    for name in SCOPED_KNOBS:
        given = getattr(args, name)
        if not given:
            continue
        pairs = [item for item in given if isinstance(item, tuple)]
        plain = [item for item in given if not isinstance(item, tuple)]
        if not pairs:
            knobs[name] = plain[-1]
        else:
            knobs[name] = dict(pairs) | ({"*": plain[-1]} if plain else {})
    return knobs


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mps-emulator`` until interrupted."""
    args = build_parser().parse_args(argv)
    try:
        backend = make_backend(
            secret_id=args.secret_id,
            secret_key=args.secret_key,
            token=args.token,
            state_file=args.state_file,
            **knobs_from_args(args),
        )
    except ValueError as exc:
        print(f"mps-emulator: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(
            "\n"
            + "!" * 78
            + f"\nWARNING: the MPS emulator binds {args.host}, not loopback: anyone who can reach this"
            "\nmachine can use it. It is a test double with well-known credentials; never expose it.\n"
            + "!" * 78
            + "\n",
            file=sys.stderr,
        )
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"mps-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    endpoint = endpoint_url(args.host, sock.getsockname()[1])
    connection = {
        "conn_type": "tencentcloud_mps",
        "login": args.secret_id,
        "password": "<the --secret-key value>",
        "extra": {"endpoint": endpoint, "region": "ap-guangzhou"},
    }
    print(f"MPS emulator listening on {endpoint} (SecretId {args.secret_id})", flush=True)
    print(f"Airflow connection: AIRFLOW_CONN_TENCENTCLOUD_MPS_DEFAULT='{json.dumps(connection)}'", flush=True)
    server = build_server(backend, public_url=args.public_url, log_level=args.log_level)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
