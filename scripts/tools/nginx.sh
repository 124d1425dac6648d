#!/usr/bin/env bash
# Installs nginx from Debian (idempotent) for the feed benchmark's static-file reference.
# The Debian service is not started: the benchmark runs its own nginx with its own config.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
    if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
    fi
    # policy-rc.d keeps the package from starting the system nginx on port 80.
    echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null \
        || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
fi
