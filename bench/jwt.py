"""JWT verifications per second on the shared middleware path, side by side with PyJWT.

1. `shared.tokens.verify_with_keys` (joserfc; signature, typ, iss, aud, exp) on one core, against
   PyJWT's `jwt.decode` with the same checks on the same token: the reference.
2. Full requests through `create_base_app`'s bearer middleware (JwksVerifier with a cached key set)
   on an aiohttp server in its own process, driven by wrk at 32 connections; the reference is a
   public route of the same server, which skips token verification.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet, RSAKey

from bench.auth import LUA_GET, wrk
from shared.testing import ROOT, free_port
from shared.tokens import AUDIENCE, verify_with_keys

ISSUER = "http://127.0.0.1:1"  # replaced by the server's own URL for the HTTP runs
SECONDS = 3.0
DURATION = 10


def make_token(key: RSAKey, issuer: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "bench.client",
        "client_id": "bench.client",
        "account_id": str(uuid.uuid4()),
        "account_code": "bench",
        "iat": now,
        "exp": now + 3600,
        "jti": str(uuid.uuid4()),
    }
    return jose_jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}, claims, key)


def rate(operation: Callable[[], Any]) -> float:
    """Operations per second over about SECONDS seconds."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < SECONDS:
        for _ in range(100):
            operation()
        count += 100
    return count / elapsed


def serve(port: int, jwks: dict[str, Any]) -> None:
    """The server process: JWKS, a protected route and a public one on create_base_app."""
    from aiohttp import web

    from shared.tokens import JwksVerifier
    from shared.web import Route, add_routes, claims, create_base_app

    url = f"http://127.0.0.1:{port}"

    async def jwks_route(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    async def protected(request: web.Request) -> web.Response:
        return web.json_response({"account": claims(request).account_code})

    async def open_route(request: web.Request) -> web.Response:
        return web.json_response({"account": request.match_info["accountCode"]})

    app = create_base_app("bench", verifier=JwksVerifier(url))
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


def main() -> str:
    subprocess.run(["bash", str(ROOT / "scripts" / "tools" / "wrk.sh")], check=True)
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, private=True)
    key.ensure_kid()
    public = key.as_dict(private=False)
    key_set = KeySet.import_key_set({"keys": [public]})  # type: ignore[list-item]
    token = make_token(key, ISSUER)
    pyjwt_key = pyjwt.PyJWK(public).key

    def joserfc_path() -> None:
        verify_with_keys(token, key_set, ISSUER)

    def pyjwt_path() -> None:
        pyjwt.decode(token, pyjwt_key, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)

    ours, reference = rate(joserfc_path), rate(pyjwt_path)

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(port, {"keys": [public]}), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{port}"
        http_token = make_token(key, url)
        asyncio.run(_wait_and_check(url, http_token))
        with_token = LUA_GET.replace("done =", f'wrk.headers["Authorization"] = "Bearer {http_token}"\ndone =', 1)
        protected = wrk(f"{url}/v1/things/bench", with_token, DURATION)
        public_route = wrk(f"{url}/v1/open/bench", LUA_GET, DURATION)
    finally:
        server.terminate()
        server.join(10)
    rows = [
        "| path | verifications or requests /s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|",
        f"| shared.tokens.verify_with_keys (joserfc, RS256 + claim checks), one core | {ours:.0f} | | | |",
        f"| PyJWT jwt.decode, same token and checks (reference), one core | {reference:.0f} | | | |",
    ]
    for label, result in (
        ("GET protected route through create_base_app bearer middleware (wrk, 32 connections)", protected),
        ("GET public route of the same server, no verification (reference)", public_route),
    ):
        rows.append(
            f"| {label} | {result['rps']:.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} | {result['errors']} |"
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
