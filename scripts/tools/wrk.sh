#!/usr/bin/env bash
# Installs the wrk HTTP load generator from Debian (idempotent).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v wrk >/dev/null; then
    if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi
