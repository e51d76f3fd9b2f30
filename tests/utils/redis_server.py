"""A throwaway ``redis-server`` (Debian's) on a free loopback port, for the shared quota tests."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: Why the shared quota tests against Redis skip on a machine without it.
MISSING_REASON = (
    "redis-server is not installed (Debian's redis-server package: make test-distributed's "
    "scripts/setup-distributed.sh installs it)"
)


def redis_server_binary() -> str | None:
    """The path of ``redis-server``, or ``None`` where it is not installed."""
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.which("/usr/bin/redis-server") else None
    )


def module_redis_server(
    tmp_path_factory: pytest.TempPathFactory, password: str | None = None
) -> Iterator[RedisServer]:
    """
    The body of a module-scoped ``redis_server`` fixture: one server for the module, skipped without Redis.

    :param password: the password it requires, or ``None`` for none.
    """
    if redis_server_binary() is None:
        pytest.skip(MISSING_REASON)
    with RedisServer(workdir=tmp_path_factory.mktemp("redis"), password=password) as server:
        yield server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """
    ``redis-server`` on 127.0.0.1 with no persistence, optionally requiring a password.

    :param workdir: an empty directory for its working files and log.
    :param password: the ``requirepass`` password, or ``None`` for none.
    """

    def __init__(self, *, workdir: Path, password: str | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError(MISSING_REASON)
        self.binary = binary
        self.workdir = workdir
        self.password = password
        self.port = _free_port()
        self.log_path = workdir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        """The storage URI of its database 0, with the password when one is required."""
        userinfo = f":{self.password}@" if self.password else ""
        return f"redis://{userinfo}127.0.0.1:{self.port}/0"

    def start(self, *, timeout: float = 15.0) -> None:
        """Start it and wait until it accepts connections."""
        args = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
        ]
        if self.password:
            args += ["--requirepass", self.password]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
                raise RuntimeError(f"redis-server exited with code {self._proc.returncode}:\n{log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not listen on port {self.port} within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def flush(self) -> None:
        """Forget every key (between tests)."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password)
        try:
            client.flushall()
        finally:
            client.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
