"""
Shared secrets and helpers of the security suite.

The credentials are distinctive random strings, so finding one anywhere means it leaked: the
SecretKey and session token of the emulator's account, and a second, wrong SecretKey (connection
``mps_wrong_key``) that the service refuses.  A failed signature must not echo the key either.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

SECURITY_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "dags_examples"

SECRET_ID = "AKIDSECURITYSUITE000000000000000000000"
SECRET_KEY = "seckey-" + secrets.token_hex(12)
TOKEN = "sectoken-" + secrets.token_hex(12)
WRONG_KEY = "wrongkey-" + secrets.token_hex(12)
#: Every value that must never be written anywhere.
SECRETS = (SECRET_KEY, TOKEN, WRONG_KEY)

#: Airflow 3.3's in-process supervisor (``dag.test()`` / ``airflow dags test`` only) logs every
#: ``MaskSecret`` message a task sends it, value included, at DEBUG.  That line is Airflow's own
#: (``InProcessSupervisorComms.send``), written before the masker it feeds can hide anything; it is
#: the one line the dag.test path excludes.  The real deployment path logs no such line.
IN_PROCESS_MASK_SECRET_LINE = re.compile(
    r"^\S+ \[debug\s*\] Sending request\s+loc=supervisor\.py:\d+ "
    r"msg=MaskSecret\(value=.*, name=None, type='MaskSecret'\)$"
)


def connection(endpoint: str, *, key: str = SECRET_KEY) -> str:
    """The ``tencentcloud_mps`` connection JSON for the security emulator, signing with ``key``."""
    return json.dumps(
        {
            "conn_type": "tencentcloud_mps",
            "login": SECRET_ID,
            "password": key,
            "extra": {"endpoint": endpoint, "region": "ap-guangzhou", "token": TOKEN},
        }
    )


def leaks(text: str) -> list[str]:
    """The lines of ``text`` holding any of :data:`SECRETS`."""
    return [line for line in text.splitlines() if any(secret in line for secret in SECRETS)]


def database_leaks(database: Path) -> list[str]:
    """
    Every place a secret appears in a SQLite metadata database.

    Two views: the raw bytes of the file (free pages and old row versions included), and every
    cell of every table, decoded.  Encrypted columns are checked separately by the caller.
    """
    found = [f"{database.name}: raw bytes" for secret in SECRETS if secret.encode() in database.read_bytes()]
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # table names come from sqlite_master
                for cell in row:
                    text = cell.decode(errors="replace") if isinstance(cell, bytes) else str(cell)
                    if any(secret in text for secret in SECRETS):
                        found.append(f"{table}: {text[:200]}")
    return found


def table_rows(database: Path, query: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query on a SQLite metadata database."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return list(db.execute(query))


def files_with_secrets(root: Path) -> dict[str, list[str]]:
    """Every file under ``root`` (but its SQLite databases) with the lines that hold a secret."""
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix in (".db", ".db-journal", ".db-wal"):
            continue
        lines = leaks(path.read_text(errors="replace"))
        if lines:
            found[str(path.relative_to(root))] = lines[:5]
    return found


def read_all(paths: Iterable[Path]) -> str:
    return "\n".join(path.read_text(errors="replace") for path in paths)


@pytest.fixture(scope="module")
def security_emulator_options() -> dict[str, Any]:
    """Timing of the module's emulator; override in a test module."""
    return {"wait_seconds": 0, "run_seconds": 0}


@pytest.fixture(scope="module")
def security_emulator(security_emulator_options: dict[str, Any]) -> Iterator[ThreadedEmulatorServer]:
    """An emulator of the module's own whose account needs :data:`SECRET_KEY` and :data:`TOKEN`."""
    from airflow_provider_mps.emulator.server import ThreadedEmulatorServer

    server = ThreadedEmulatorServer(
        port=0, secret_id=SECRET_ID, secret_key=SECRET_KEY, token=TOKEN, **security_emulator_options
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
