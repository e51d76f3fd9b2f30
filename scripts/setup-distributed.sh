#!/usr/bin/env bash
# What the distributed tests (tests/distributed, `make test-distributed`) and bench/distributed.py
# need on a fresh Debian machine, beyond `make install`:
#   * Debian's `postgresql` (the metadata database; the tests run it as the unprivileged `postgres`
#     user in a throwaway data directory) and `redis-server` (Celery's broker and the shared quota);
#   * in the project's virtualenv: apache-airflow-providers-celery (CeleryExecutor), psycopg2-binary
#     and asyncpg (Airflow 3 reaches PostgreSQL with both, as its `postgres` extra does) and the
#     provider's `shared-quota` extra (the limits library), pinned so that pip leaves the venv's
#     Airflow as it is.
# Safe to run again: when everything is there it only prints versions (about a second).
#
#   scripts/setup-distributed.sh               # uses .venv/bin/python
#   PYTHON=/path/to/python scripts/setup-distributed.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
CELERY_REQUIREMENT="${CELERY_REQUIREMENT:-apache-airflow-providers-celery>=3.10}"
PSYCOPG_REQUIREMENT="${PSYCOPG_REQUIREMENT:-psycopg2-binary>=2.9}"
ASYNCPG_REQUIREMENT="${ASYNCPG_REQUIREMENT:-asyncpg>=0.30}"
# Celery 5.7 no longer has celery.backends.database.retry, which the celery provider (3.26) imports.
CELERY_PIN="${CELERY_PIN:-celery<5.6}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup-distributed: installing Debian packages needs root (or sudo): $*" >&2
        exit 1
    fi
}

pg_bin() {
    # Debian installs the server binaries under /usr/lib/postgresql/<major>/bin, off PATH.
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

missing=()
if [ -z "$(pg_bin)" ] || [ ! -x "$(pg_bin)/initdb" ] || ! id postgres >/dev/null 2>&1; then
    missing+=(postgresql)
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-distributed: ${missing[*]} missing and there is no apt-get; install them by hand" >&2
        exit 1
    fi
    echo "setup-distributed: installing Debian's ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
# The packages start their services where a service manager runs; the tests start their own.
echo "setup-distributed: $("$(pg_bin)/postgres" --version), $(redis-server --version | cut -d' ' -f1-3)"

if [ ! -x "$PYTHON" ]; then
    echo "setup-distributed: $PYTHON not found; run 'make install' first, or set PYTHON" >&2
    exit 1
fi
if ! "$PYTHON" -c "from airflow.providers.celery.executors import celery_executor_utils; import psycopg2, asyncpg, limits, redis" >/dev/null 2>&1; then
    # Keep the venv's Airflow: pip may not upgrade what is installed to satisfy the new packages.
    constraints="$(mktemp)"
    trap 'rm -f "$constraints"' EXIT
    "$PYTHON" -m pip freeze --exclude-editable | grep -Ei '^apache-airflow(-core|-task-sdk)?==' > "$constraints"
    echo "setup-distributed: installing $CELERY_REQUIREMENT, $PSYCOPG_REQUIREMENT, $ASYNCPG_REQUIREMENT" \
        "and .[shared-quota] into $PYTHON"
    "$PYTHON" -m pip install --quiet --constraint "$constraints" \
        "$CELERY_REQUIREMENT" "$CELERY_PIN" "$PSYCOPG_REQUIREMENT" "$ASYNCPG_REQUIREMENT" -e '.[shared-quota]'
fi
"$PYTHON" - <<'PY'
from importlib.metadata import version

names = (
    "apache-airflow",
    "apache-airflow-providers-celery",
    "celery",
    "psycopg2-binary",
    "asyncpg",
    "limits",
    "redis",
)
print("setup-distributed: " + ", ".join(f"{name} {version(name)}" for name in names))
PY
