"""Token grants per second and p99 latency: one auth process, real PostgreSQL, 32 concurrent clients.

wrk (installed by scripts/tools/wrk.sh) posts client_credentials grants with HTTP Basic to a fresh
auth process over a fresh database; the same wrk run against `/healthz` of the same process is the
reference: the ceiling of the HTTP stack when a request does no work. Beside req/s, each run
prints the auth process's CPU milliseconds per request (`bench.cputime`), which the other loads on
a shared machine hardly move.

`KALENDS_TOKEN_ALG` (ES256 or RS256) picks the signing algorithm of the benchmarked process (the
service's default when unset); `KALENDS_BENCH_PROFILE=<name>` also records a py-spy flame graph of
the grant run into `bench/results/<name>.svg`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from bench.cputime import CpuMeter
from shared.testing import (
    DEFAULT_AMQP,
    DEFAULT_DB,
    ROOT,
    ServiceProcess,
    create_database,
    delete_prefixed,
    drop_database,
    random_name,
    with_database,
)

CONNECTIONS = 32
THREADS = 2
DURATION = int(os.environ.get("KALENDS_BENCH_SECONDS", "15"))  # seconds per run
WARMUP = 2

LUA_POST = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "{authorization}"

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d p50_us=%d p99_us=%d duration_us=%d\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""

LUA_GET = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors=%d p50_us=%d p99_us=%d duration_us=%d\\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def wrk(url: str, script: str, duration: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        out = subprocess.run(
            ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{duration}s", "--timeout", "5s", "-s", handle.name, url],
            capture_output=True,
            text=True,
            check=True,
            timeout=duration + 30,
        ).stdout
    finally:
        os.unlink(handle.name)
    match = re.search(r"RESULT requests=(\d+) errors=(\d+) p50_us=(\d+) p99_us=(\d+) duration_us=(\d+)", out)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    requests, errors, p50, p99, duration_us = (int(g) for g in match.groups())
    return {
        "rps": requests / (duration_us / 1e6),
        "requests": requests,
        "errors": errors,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
    }


async def _token_header(url: str, authorization: str) -> dict[str, Any]:
    """The JOSE header of one granted access token (which algorithm the process signs with)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/oauth2/token", data={"grant_type": "client_credentials"}, headers={"Authorization": authorization}
        ) as response,
    ):
        body = await response.json()
    head = str(body["access_token"]).split(".", 1)[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    return header


def _algorithm(header: dict[str, Any]) -> str:
    return str(header.get("alg", "?"))


async def _check_grant(url: str, authorization: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": authorization},
        ) as response,
    ):
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"grant failed: {response.status} {body}")


def measured(pid: int, backends: list[int], url: str, script: str, duration: int) -> dict[str, float]:
    """One wrk run with the server's CPU milliseconds per request beside it, and its PostgreSQL
    backends' (the same two cores serve both)."""
    with CpuMeter([pid]) as meter, CpuMeter(backends) as database:
        result = wrk(url, script, duration)
    result["cpu_ms"] = meter.per_request_ms(int(result["requests"]))
    result["db_cpu_ms"] = database.per_request_ms(int(result["requests"]))
    return result


async def _backends(server: str, database: str) -> list[int]:
    """The PostgreSQL backend processes connected to `database` (the service's pool, once warm)."""
    conn = await asyncpg.connect(with_database(server, "postgres"))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", database
        )
    finally:
        await conn.close()
    return [int(r["pid"]) for r in rows]


def profiled(pid: int, name: str, duration: int) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` for `duration` seconds into bench/results/<name>.svg (started, not awaited)."""
    spy = Path(sys.executable).with_name("py-spy")
    out = ROOT / "bench" / "results" / f"{name}.svg"
    return subprocess.Popen(
        [str(spy), "record", "-o", str(out), "--pid", str(pid), "--duration", str(duration), "--subprocesses"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> str:
    subprocess.run(["bash", str(ROOT / "scripts" / "tools" / "wrk.sh")], check=True)
    server = os.environ.get("KALENDS_TEST_DATABASE_URL") or DEFAULT_DB
    amqp = os.environ.get("KALENDS_TEST_AMQP_URL") or DEFAULT_AMQP
    name = random_name("kalends_bench_auth")
    prefix = random_name("bench") + "."
    database_url = asyncio.run(create_database(server, name))
    process: ServiceProcess | None = None
    try:
        env = {
            "KALENDS_DATABASE_URL": database_url,
            "KALENDS_AMQP_URL": amqp,
            "KALENDS_AMQP_PREFIX": prefix,
            # Private signing keys are sealed at rest: the service does not start without a key list.
            "KALENDS_ENCRYPTION_KEYS": os.environ.get("KALENDS_ENCRYPTION_KEYS") or Fernet.generate_key().decode(),
        }
        if os.environ.get("KALENDS_TOKEN_ALG"):
            env["KALENDS_TOKEN_ALG"] = os.environ["KALENDS_TOKEN_ALG"]
        process = ServiceProcess("auth", env, log_path=Path(tempfile.gettempdir()) / f"{name}.log")
        process.env = {**env, "KALENDS_AUTH_URL": process.url}
        process.start()
        asyncio.run(process.wait_ready(60))
        created = subprocess.run(
            [sys.executable, "-m", "services.auth.admin", "create-account", "bench", "--name", "Bench"],
            cwd=ROOT,
            env={**os.environ, **process.env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        account = json.loads(created)
        authorization = aiohttp.encode_basic_auth(account["clientId"], account["clientSecret"])
        asyncio.run(_check_grant(process.url, authorization))
        wrk(process.url + "/oauth2/token", LUA_POST.format(authorization=authorization), WARMUP)
        assert process.process is not None
        pid = process.process.pid
        algorithm = _algorithm(asyncio.run(_token_header(process.url, authorization)))
        profile = os.environ.get("KALENDS_BENCH_PROFILE")
        spy = profiled(pid, profile, DURATION - 2) if profile else None
        backends = asyncio.run(_backends(server, name))
        post = LUA_POST.format(authorization=authorization)
        grants = measured(pid, backends, process.url + "/oauth2/token", post, DURATION)
        if spy is not None:
            spy.wait(60)
        health = measured(pid, backends, process.url + "/healthz", LUA_GET, DURATION)
    finally:
        if process is not None:
            process.stop()
        asyncio.run(drop_database(server, name))
        # auth declares the platform's exchanges and their unrouted queue under the prefix: delete them,
        # or every run leaves a queue on the broker (each holds file handles).
        asyncio.run(delete_prefixed(amqp, {prefix}))
    rows = [
        "| run (wrk, 32 connections, 2 threads, one auth process, 2 shared cores)"
        " | req/s | auth CPU ms/req | PostgreSQL CPU ms/req | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, result in (
        (f"POST /oauth2/token client_credentials ({algorithm} JWT; client check + grant insert)", grants),
        ("GET /healthz of the same process (reference: HTTP stack, no work)", health),
    ):
        rows.append(
            f"| {label} | {result['rps']:.0f} | {result['cpu_ms']:.3f} | {result['db_cpu_ms']:.3f}"
            f" | {result['p50_ms']:.1f}"
            f" | {result['p99_ms']:.1f} | {result['errors']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(main())
