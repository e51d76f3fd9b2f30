#!/usr/bin/env bash
# What the browser tests (tests/browser, `pytest -m browser`) need on a fresh Debian machine:
#   * Debian's `chromium` package (Playwright's own browser download is not used), and
#   * the `playwright` Python package in the project's virtualenv.
# Safe to run again: when both are there it only prints their versions (well under a second).
#
#   scripts/setup-browser.sh                 # uses .venv/bin/python
#   PYTHON=/path/to/python scripts/setup-browser.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-.venv/bin/python}"
PLAYWRIGHT_REQUIREMENT="${PLAYWRIGHT_REQUIREMENT:-playwright>=1.49}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup-browser: installing Chromium needs root (or sudo): $*" >&2
        exit 1
    fi
}

if ! command -v chromium >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-browser: no chromium and no apt-get; install Chromium and set MPS_BROWSER_EXECUTABLE" >&2
        exit 1
    fi
    echo "setup-browser: installing Debian's chromium"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
fi
echo "setup-browser: $(chromium --version 2>/dev/null || echo 'chromium (version unknown)') at $(command -v chromium)"

if [ ! -x "$PYTHON" ]; then
    echo "setup-browser: $PYTHON not found; run 'make install' first, or set PYTHON" >&2
    exit 1
fi
if ! "$PYTHON" -c "import playwright" >/dev/null 2>&1; then
    echo "setup-browser: installing $PLAYWRIGHT_REQUIREMENT into $PYTHON"
    "$PYTHON" -m pip install --quiet "$PLAYWRIGHT_REQUIREMENT"
fi
echo "setup-browser: playwright $("$PYTHON" -c 'from importlib.metadata import version; print(version("playwright"))')"
