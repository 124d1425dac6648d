#!/usr/bin/env bash
# Installs the independent iCalendar parsers the feed tests use (idempotent):
#   - libical's GObject bindings for the system python3 (Debian: gir1.2-ical-3.0, python3-gi)
#   - Mozilla's ical.js, pinned by tests/tools/package-lock.json, into tests/tools/node_modules
#   - vdirsyncer (a real calendar client) in its own venv at .cache/vdirsyncer-venv
# Prints nothing on success when everything is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_install() {
    # apt-get update once per machine (the lists may be empty on a fresh machine).
    if [ ! -f /var/lib/apt/periodic/kalends-updated ]; then
        $SUDO apt-get update -qq >/dev/null
        $SUDO mkdir -p /var/lib/apt/periodic && $SUDO touch /var/lib/apt/periodic/kalends-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# libical (GObject introspection) for /usr/bin/python3
if ! /usr/bin/python3 -c "import gi; gi.require_version('ICalGLib', '3.0'); from gi.repository import ICalGLib" 2>/dev/null; then
    apt_install gir1.2-ical-3.0 python3-gi
fi

# ical.js from npm, exact versions from the lock file
if [ ! -f "$ROOT/tests/tools/node_modules/ical.js/package.json" ]; then
    command -v npm >/dev/null || apt_install nodejs npm
    (cd "$ROOT/tests/tools" && npm ci --silent --no-audit --no-fund >/dev/null)
fi

# vdirsyncer in a venv of its own, so its dependencies never meet the project's
VENV="$ROOT/.cache/vdirsyncer-venv"
if [ ! -x "$VENV/bin/vdirsyncer" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "vdirsyncer==0.21.0" >/dev/null
fi
