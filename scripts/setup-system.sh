#!/usr/bin/env bash
# Debian packages the test suite needs beyond Python, installed on a fresh machine (idempotent, and
# quick when everything is there):
#   * node and npm, for the emulator test that runs Tencent's Node.js SDK (tests/emulator/node);
#   * redis-server, for the shared quota mode's tests (tests/utils/test_shared_quota.py), which
#     start their own on a random loopback port.
# The browser tests have their own script, scripts/setup-browser.sh (Debian's chromium + Playwright).
set -euo pipefail

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "setup-system: installing Debian packages needs root (or sudo): $*" >&2
        exit 1
    fi
}

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-system: node/npm are missing and there is no apt-get; install Node.js 18+ with npm" >&2
        exit 1
    fi
    echo "setup-system: installing Debian's nodejs and npm"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm
fi
echo "setup-system: node $(node --version), npm $(npm --version)"

if ! command -v redis-server >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup-system: redis-server is missing and there is no apt-get; install Redis 6+" >&2
        exit 1
    fi
    echo "setup-system: installing Debian's redis-server"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server
fi
echo "setup-system: $(redis-server --version | cut -d' ' -f1-3)"
