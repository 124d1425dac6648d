#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) when missing, for `promtool check rules` on
# deploy/prometheus/. The Debian service is not started: only the tool is wanted.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! command -v promtool >/dev/null && [ ! -x /usr/bin/promtool ]; then
    if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
    fi
    # policy-rc.d keeps the package from starting a Prometheus server on port 9090.
    echo 'exit 101' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null && $SUDO chmod +x /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
