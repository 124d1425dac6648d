"""`python -m shared.healthcheck [URL]`: exit 0 when a Kalends service in this container is alive.

For container HEALTHCHECKs, where curl is not installed. Without a URL it asks KALENDS_HEALTHCHECK_URL,
else each service port of the contract (KALENDS_<SERVICE>_PORT or its default) on 127.0.0.1: a
container runs one service, so the one that answers is it.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"auth": 8081, "ingest": 8082, "feed": 8083, "webhook": 8084, "sync": 8085, "mail": 8086, "web": 8087}


def candidate_urls(environ: dict[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    explicit = env.get("KALENDS_HEALTHCHECK_URL", "").strip()
    if explicit:
        return [explicit]
    ports = [env.get(f"KALENDS_{name.upper()}_PORT", "").strip() or str(port) for name, port in DEFAULT_PORTS.items()]
    return [f"http://127.0.0.1:{port}/healthz" for port in dict.fromkeys(ports)]


def alive(url: str, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) URLs of our own
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def main(argv: list[str]) -> int:
    urls = argv or candidate_urls()
    for url in urls:
        if alive(url):
            return 0
    print(f"unhealthy: no answer from {', '.join(urls)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
