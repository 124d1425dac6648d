"""JWT signing and verification per second, RS256 against ES256, and the shared middleware path.

1. One core, CPU microseconds per operation: joserfc signing as auth does it, and
   `shared.tokens.verify_with_keys` (signature, typ, iss, aud, exp) for each algorithm, beside
   PyJWT's `jwt.decode` with the same checks on the same token (the reference), and a hit in
   JwksVerifier's per-token cache (claims + denylist, no signature check).
2. Full requests through `create_base_app`'s bearer middleware (JwksVerifier with a cached key set)
   on an aiohttp server in its own process, driven by wrk at 32 connections with one token (as a
   client sends it for the token's lifetime): with the per-token cache, and with it off (every
   request checks the signature), for each algorithm; the reference is a public route of the same
   server, which skips token verification. Each row also gives the server's CPU ms per request.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from bench.auth import LUA_GET, wrk
from bench.cputime import CpuMeter
from shared.testing import ROOT, free_port
from shared.tokens import AUDIENCE, JwksVerifier, verify_with_keys

ISSUER = "http://127.0.0.1:1"  # replaced by the server's own URL for the HTTP runs
SECONDS = 2.0
DURATION = int(os.environ.get("KALENDS_BENCH_SECONDS", "10"))
ALGORITHMS = ("RS256", "ES256")

SigningKey = RSAKey | ECKey


def make_key(algorithm: str) -> SigningKey:
    """A signing key as services.auth.keys makes them."""
    key: SigningKey
    if algorithm == "ES256":
        key = ECKey.generate_key("P-256", parameters={"use": "sig", "alg": "ES256"}, private=True)
    else:
        key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
    key.ensure_kid()
    return key


def claims_for(issuer: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "bench.client",
        "client_id": "bench.client",
        "account_id": str(uuid.uuid4()),
        "account_code": "bench",
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
    }


def make_token(key: SigningKey, issuer: str) -> str:
    algorithm = str(key.alg)
    return jose_jwt.encode({"alg": algorithm, "typ": "at+jwt", "kid": key.kid}, claims_for(issuer), key)


def cpu_us(operation: Callable[[], Any]) -> float:
    """CPU microseconds per operation over about SECONDS seconds of CPU time."""
    count, started = 0, time.process_time()
    while (elapsed := time.process_time() - started) < SECONDS:
        for _ in range(50):
            operation()
        count += 50
    return elapsed * 1e6 / count


def cached_hit_us(key: SigningKey) -> float:
    """A JwksVerifier.verify answered from its cache (the same token again), CPU µs each."""
    verifier = JwksVerifier(ISSUER, min_refresh=3600)
    verifier.install_key_set({"keys": [key.as_dict(private=False)]})
    token = make_token(key, ISSUER)

    async def run() -> float:
        await verifier.verify(token)
        count, started = 0, time.process_time()
        while (elapsed := time.process_time() - started) < SECONDS:
            for _ in range(200):
                await verifier.verify(token)
            count += 200
        assert verifier.cache.hits >= count
        return elapsed * 1e6 / count

    return asyncio.run(run())


def serve(port: int, jwks: dict[str, Any], cache_size: int) -> None:
    """The server process: JWKS, a protected route and a public one on create_base_app."""
    from aiohttp import web

    from shared.web import Route, add_routes, claims, create_base_app

    url = f"http://127.0.0.1:{port}"

    async def jwks_route(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    async def protected(request: web.Request) -> web.Response:
        return web.json_response({"account": claims(request).account_code})

    async def open_route(request: web.Request) -> web.Response:
        return web.json_response({"account": request.match_info["accountCode"]})

    app = create_base_app("bench", verifier=JwksVerifier(url, cache_size=cache_size))
    add_routes(
        app,
        [
            Route("GET", "/.well-known/jwks.json", jwks_route, "keys", public=True),
            Route("GET", "/v1/things/{accountCode}", protected, "protected"),
            Route("GET", "/v1/open/{accountCode}", open_route, "public", public=True),
        ],
    )
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def http_runs(keys: dict[str, SigningKey]) -> list[tuple[str, dict[str, float]]]:
    jwks = {"keys": [key.as_dict(private=False) for key in keys.values()]}
    rows: list[tuple[str, dict[str, float]]] = []
    for cache_size, label in ((10_000, "per-token cache on"), (0, "cache off: signature checked per request")):
        port = free_port()
        server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, jwks, cache_size), daemon=True)
        server.start()
        assert server.pid is not None
        try:
            url = f"http://127.0.0.1:{port}"
            for algorithm in ALGORITHMS:
                token = make_token(keys[algorithm], url)
                asyncio.run(_wait_and_check(url, token))
                script = LUA_GET.replace("done =", f'wrk.headers["Authorization"] = "Bearer {token}"\ndone =', 1)
                rows.append((f"GET protected route, {algorithm} token, {label}", _measured(server.pid, url, script)))
            if cache_size:
                rows.append(
                    (
                        "GET public route of the same server, no verification (reference)",
                        _measured(server.pid, url, LUA_GET, "/v1/open/bench"),
                    )
                )
        finally:
            server.terminate()
            server.join(10)
    return rows


def _measured(pid: int, url: str, script: str, path: str = "/v1/things/bench") -> dict[str, float]:
    with CpuMeter([pid]) as meter:
        result = wrk(f"{url}{path}", script, DURATION)
    result["cpu_ms"] = meter.per_request_ms(int(result["requests"]))
    return result


def main() -> str:
    subprocess.run(["bash", str(ROOT / "scripts" / "tools" / "wrk.sh")], check=True)
    keys = {algorithm: make_key(algorithm) for algorithm in ALGORITHMS}
    rows = [
        "| one core, CPU µs per operation | RS256 | ES256 |",
        "|---|---:|---:|",
    ]
    measured: dict[str, dict[str, float]] = {}
    for algorithm, key in keys.items():
        public = key.as_dict(private=False)
        key_set = KeySet.import_key_set({"keys": [public]})  # type: ignore[list-item]
        token = make_token(key, ISSUER)
        header = {"alg": algorithm, "typ": "at+jwt", "kid": key.kid}
        body = claims_for(ISSUER)
        pyjwt_key = pyjwt.PyJWK(public).key
        measured[algorithm] = {
            "sign": cpu_us(lambda h=header, b=body, k=key: jose_jwt.encode(h, b, k)),
            "verify": cpu_us(lambda t=token, s=key_set: verify_with_keys(t, s, ISSUER)),
            "pyjwt": cpu_us(
                lambda t=token, k=pyjwt_key, a=algorithm: pyjwt.decode(
                    t, k, algorithms=[a], audience=AUDIENCE, issuer=ISSUER
                )
            ),
            "cached": cached_hit_us(key),
        }
    for name, label in (
        ("sign", "sign an access token (joserfc, as auth does)"),
        ("verify", "shared.tokens.verify_with_keys: signature + claim checks"),
        ("pyjwt", "PyJWT jwt.decode, same token and checks (reference)"),
        ("cached", "JwksVerifier.verify answered from its per-token cache (+ denylist check)"),
    ):
        rows.append(f"| {label} | {measured['RS256'][name]:.1f} | {measured['ES256'][name]:.1f} |")
    rows += [
        "",
        "| wrk, 32 connections, one server process | req/s | server CPU ms/req | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, result in http_runs(keys):
        rows.append(
            f"| {label} | {result['rps']:.0f} | {result['cpu_ms']:.3f} | {result['p50_ms']:.1f}"
            f" | {result['p99_ms']:.1f} | {result['errors']} |"
        )
    return "\n".join(rows)


async def _wait_and_check(url: str, token: str) -> None:
    import aiohttp

    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(
                    f"{url}/v1/things/bench", headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    if response.status == 200:
                        return
                    raise RuntimeError(f"protected route answered {response.status}: {await response.text()}")
            except aiohttp.ClientConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


if __name__ == "__main__":
    print(main())
