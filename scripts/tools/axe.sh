#!/usr/bin/env bash
# Installs axe-core (the accessibility engine the web pages' browser tests run in Chromium), pinned by
# tests/tools/package-lock.json, into tests/tools/node_modules (idempotent). Prints the path of axe.min.js.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
AXE="$ROOT/tests/tools/node_modules/axe-core/axe.min.js"

if [ ! -f "$AXE" ]; then
    if ! command -v npm >/dev/null; then
        if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
            $SUDO apt-get update -qq >/dev/null
            $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
        fi
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    (cd "$ROOT/tests/tools" && npm ci --silent --no-audit --no-fund >/dev/null)
fi
echo "$AXE"
