#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium (idempotent), for the browser tests of the
# unsubscribe page. Prints the browser's path. Never downloads a browser build of its own.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

find_chromium() {
    for candidate in chromium chromium-browser; do
        if command -v "$candidate" >/dev/null 2>&1; then command -v "$candidate"; return 0; fi
    done
    return 1
}

if ! find_chromium >/dev/null; then
    # apt-get update once per machine (the lists may be empty on a fresh machine).
    if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
find_chromium
