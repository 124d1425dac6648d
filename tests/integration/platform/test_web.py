"""The web app factory over real HTTP: health, readiness, metrics, OpenAPI, errors, CORS and bearer auth."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel

from shared.errors import Conflict
from shared.http import CaseInsensitiveModel, read_model
from shared.tokens import AUDIENCE, JwksVerifier
from shared.web import READINESS, Route, add_routes, claims, create_base_app, json_response

Client = TestClient[web.Request, web.Application]


class CalendarIn(CaseInsensitiveModel):
    code: str
    name: str


class CalendarOut(BaseModel):
    code: str
    owner: str


async def create_calendar(request: web.Request) -> web.Response:
    body = await read_model(request, CalendarIn)
    if body.code == "taken":
        raise Conflict("calendar code 'taken' exists", code="CalendarExists")
    return json_response({"code": body.code, "owner": claims(request).account_code}, status=201)


async def explode(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals: password=hunter2")


async def echo(request: web.Request) -> web.Response:
    return json_response({"size": len(await request.read())})


async def bad_form(request: web.Request) -> web.Response:
    raise web.HTTPBadRequest(text="form field 'x' is broken")


async def oauth_style(request: web.Request) -> web.Response:
    raise web.HTTPBadRequest(text='{"error": "invalid_grant"}', content_type="application/json")


def build_app(verifier: JwksVerifier | None = None, **kwargs: Any) -> web.Application:
    app = create_base_app("testsvc", verifier=verifier, client_max_size=1024, **kwargs)
    add_routes(
        app,
        [
            Route("POST", "/v1/calendars/{accountCode}", create_calendar, "create", CalendarIn, CalendarOut),
            Route("POST", "/v2/calendars/{accountCode}", create_calendar, "create (v2)", CalendarIn, CalendarOut),
            Route("GET", "/v1/explode", explode, "always fails", public=True),
            Route("POST", "/v1/echo", echo, "echo size", public=True),
            Route("GET", "/v1/bad-form", bad_form, "aiohttp 400", public=True),
            Route("GET", "/v1/oauth", oauth_style, "own body", public=True),
        ],
    )
    return app


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[[web.Application], Awaitable[Client]]]:
    clients: list[Client] = []

    async def make(app: web.Application) -> Client:
        client: Client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


# --- health, readiness, metrics, openapi --------------------------------------------------------


async def test_healthz_answers_ok(make_client: Callable[[web.Application], Awaitable[Client]]) -> None:
    client = await make_client(build_app())
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_503_naming_what_failed_and_200_when_all_answer(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    app = build_app()
    state = {"rabbitmq_up": False}

    async def postgresql() -> None:
        return None

    async def rabbitmq() -> None:
        if not state["rabbitmq_up"]:
            raise ConnectionError("RabbitMQ connection is down")

    async def slow() -> None:
        await asyncio.sleep(30)

    app[READINESS].update(postgresql=postgresql, rabbitmq=rabbitmq)
    client = await make_client(app)

    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body == {"status": "unavailable", "failed": {"rabbitmq": "ConnectionError: RabbitMQ connection is down"}}

    state["rabbitmq_up"] = True
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "checks": ["postgresql", "rabbitmq"]}

    app[READINESS]["slow"] = slow
    started = time.monotonic()
    response = await client.get("/readyz")
    assert response.status == 503
    assert "no answer within" in (await response.json())["failed"]["slow"]
    assert time.monotonic() - started < 10


async def test_metrics_are_prometheus_text_counting_requests_by_route(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    for _ in range(3):
        await client.get("/v1/explode")
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    samples = [s for s in families["http_requests"].samples if s.name == "http_requests_total"]
    explode_500 = [s for s in samples if s.labels == {"method": "GET", "route": "/v1/explode", "status": "500"}]
    assert [s.value for s in explode_500] == [3.0]
    assert "http_request_duration_seconds" in families


async def test_openapi_json_is_a_valid_openapi_3_1_document_of_every_route(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) >= {
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/v1/calendars/{accountCode}",
        "/v2/calendars/{accountCode}",
    }
    create = document["paths"]["/v1/calendars/{accountCode}"]["post"]
    assert create["security"] == [{"bearer": []}]
    assert create["parameters"][0]["name"] == "accountCode"
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/CalendarIn"
    operation_ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))


# --- errors -------------------------------------------------------------------------------------


async def test_an_unexpected_error_is_a_500_that_reveals_nothing(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.get("/v1/explode")
    assert response.status == 500
    text = await response.text()
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert await response.json() == {
        "success": False,
        "statusCode": 500,
        "errors": [{"code": "InternalError", "reason": "an internal error occurred; it has been logged"}],
    }
    assert response.headers["X-Request-Id"]


async def test_unknown_routes_and_methods_answer_in_the_contract_body(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.get("/v1/nowhere")
    assert response.status == 404
    assert await response.json() == {
        "success": False,
        "statusCode": 404,
        "errors": [{"code": "RouteNotFound", "reason": "no route for GET /v1/nowhere"}],
    }
    response = await client.delete("/healthz")
    assert response.status == 405
    body = await response.json()
    assert body["statusCode"] == 405 and body["errors"][0]["code"] == "MethodNotAllowed"
    assert "GET" in response.headers["Allow"]


async def test_a_body_over_the_limit_is_a_413_even_when_the_handler_never_reads_it(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.post("/v1/echo", data=b"x" * 2000)
    assert response.status == 413
    body = await response.json()
    assert body["errors"][0]["code"] == "PayloadTooLarge"
    assert "1024 bytes" in body["errors"][0]["reason"]
    response = await client.get("/healthz", data=b"x" * 2000)
    assert response.status == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: caught while reading
        for _ in range(4):
            yield b"y" * 600

    response = await client.post("/v1/echo", data=chunks())
    assert response.status == 413
    assert (await client.post("/v1/echo", data=b"x" * 1000)).status == 200


async def test_aiohttp_errors_take_the_contract_shape_but_bodies_a_handler_shaped_pass_through(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.get("/v1/bad-form")
    assert response.status == 400
    assert await response.json() == {
        "success": False,
        "statusCode": 400,
        "errors": [{"code": "BadRequest", "reason": "form field 'x' is broken"}],
    }
    response = await client.get("/v1/oauth")
    assert response.status == 400
    assert await response.json() == {"error": "invalid_grant"}


async def test_cors_preflight_is_answered_and_responses_carry_cors_headers(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.options(
        "/v1/calendars/league",
        headers={
            "Origin": "https://merchant.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    response = await client.get("/v1/nowhere", headers={"Origin": "https://merchant.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]


async def test_the_request_id_is_taken_from_the_client_or_made_and_returned(
    make_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await make_client(build_app())
    response = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    made = (await client.get("/healthz")).headers["X-Request-Id"]
    assert len(made) == 32


# --- bearer tokens ------------------------------------------------------------------------------


class AuthServer:
    """A JWKS endpoint on a real port, as the auth service publishes it, counting fetches."""

    def __init__(self) -> None:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": "k1"})]
        self.fetches = 0
        self.fail = False
        self.server: TestServer | None = None

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.fail:
            return web.Response(status=503)
        return web.json_response(KeySet(self.keys).as_dict(private=False))

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", self.jwks)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return str(self.server.make_url("")).rstrip("/")

    def token(self, account_code: str, *, kid: str = "k1", issuer: str | None = None, **extra: Any) -> str:
        key = next(k for k in self.keys if k.kid == kid)
        now = int(time.time())
        assert self.server is not None
        payload = {
            "iss": issuer or str(self.server.make_url("")).rstrip("/"),
            "aud": AUDIENCE,
            "sub": "client-1",
            "client_id": "client-1",
            "account_id": "acc-1",
            "account_code": account_code,
            "jti": "j",
            "iat": now,
            "exp": now + 300,
            **extra,
        }
        return jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, payload, key)


@pytest.fixture
async def auth_server() -> AsyncIterator[AuthServer]:
    server = AuthServer()
    await server.start()
    yield server
    assert server.server is not None
    await server.server.close()


@pytest.fixture
async def secured(
    auth_server: AuthServer, make_client: Callable[[web.Application], Awaitable[Client]]
) -> AsyncIterator[tuple[Client, JwksVerifier]]:
    assert auth_server.server is not None
    verifier = JwksVerifier(str(auth_server.server.make_url("")), min_refresh=0.5)
    client = await make_client(build_app(verifier))
    yield client, verifier
    await verifier.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_of_the_account_in_the_path_is_let_through(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, _ = secured
    response = await client.post(
        "/v1/calendars/League",
        json={"Code": "fixtures", "NAME": "Fixtures"},
        headers=bearer(auth_server.token("league")),
    )
    assert response.status == 201
    assert await response.json() == {"code": "fixtures", "owner": "league"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "Unauthorized"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Unauthorized"),
        ({"Authorization": "Bearer "}, "Unauthorized"),
        ({"Authorization": "Bearer not-a-jwt"}, "InvalidToken"),
    ],
)
async def test_a_request_without_a_usable_bearer_token_is_401(
    secured: tuple[Client, JwksVerifier], headers: dict[str, str], code: str
) -> None:
    client, _ = secured
    response = await client.post("/v1/calendars/league", json={"code": "c", "name": "n"}, headers=headers)
    assert response.status == 401
    body = await response.json()
    assert body["statusCode"] == 401 and body["errors"][0]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_expired_forged_and_foreign_issuer_tokens_are_401(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, _ = secured
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    genuine = auth_server.token("league")
    header, payload, _ = genuine.split(".")
    forged_signature = jwt.encode({"alg": "RS256", "kid": "k1", "typ": "at+jwt"}, {"x": 1}, forger).split(".")[2]
    for token in (
        auth_server.token("league", exp=int(time.time()) - 3600),
        f"{header}.{payload}.{forged_signature}",
        auth_server.token("league", issuer="http://elsewhere.example"),
    ):
        response = await client.post("/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(token))
        assert response.status == 401, await response.text()
        assert (await response.json())["errors"][0]["code"] == "InvalidToken"


async def test_a_token_of_another_account_than_the_path_is_403(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, _ = secured
    response = await client.post(
        "/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(auth_server.token("rival"))
    )
    assert response.status == 403
    body = await response.json()
    assert body["errors"][0]["code"] == "Forbidden"
    assert "rival" in body["errors"][0]["reason"]


async def test_public_routes_and_unknown_routes_need_no_token(secured: tuple[Client, JwksVerifier]) -> None:
    client, _ = secured
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/v1/nowhere")).status == 404


async def test_the_key_set_is_cached_and_refetched_on_an_unknown_kid_at_a_limited_rate(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, verifier = secured
    for _ in range(5):
        response = await client.post(
            "/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(auth_server.token("league"))
        )
        assert response.status == 201
    assert auth_server.fetches == 1  # cached

    # Auth rotates its key: the first token with the new kid makes the verifier refetch.
    auth_server.keys.append(RSAKey.generate_key(2048, parameters={"kid": "k2"}))
    await asyncio.sleep(0.6)  # past min_refresh (0.5 s in this test)
    rotated = auth_server.token("league", kid="k2")
    response = await client.post("/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(rotated))
    assert response.status == 201
    assert auth_server.fetches == 2

    # A flood of tokens naming kids auth never had costs at most one fetch per min_refresh.
    await asyncio.sleep(0.6)
    before = auth_server.fetches
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(_with_kid(rotated, f"nope{n}"))
            )
            for n in range(20)
        )
    )
    assert {r.status for r in responses} == {401}
    assert auth_server.fetches - before == 1
    assert verifier.fetches == auth_server.fetches


def _with_kid(token: str, kid: str) -> str:
    """The same token with another `kid` in its header (its signature no longer matters)."""
    import base64
    import json

    header_b64, rest = token.split(".", 1)
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    header["kid"] = kid
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return f"{encoded}.{rest}"


async def test_without_a_reachable_key_set_protected_routes_answer_503_not_401(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, _ = secured
    auth_server.fail = True
    response = await client.post(
        "/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(auth_server.token("league"))
    )
    assert response.status == 503
    assert (await response.json())["errors"][0]["code"] == "ServiceUnavailable"
    assert response.headers["Retry-After"]
    auth_server.fail = False
    await asyncio.sleep(1.1)
    response = await client.post(
        "/v1/calendars/league", json={"code": "c", "name": "n"}, headers=bearer(auth_server.token("league"))
    )
    assert response.status == 201


async def test_bad_bodies_on_a_protected_route_are_clear_400s(
    secured: tuple[Client, JwksVerifier], auth_server: AuthServer
) -> None:
    client, _ = secured
    headers = {**bearer(auth_server.token("league")), "Content-Type": "application/json"}
    response = await client.post("/v1/calendars/league", data=b'{"code": ', headers=headers)
    assert response.status == 400
    assert (await response.json())["errors"][0]["code"] == "MalformedJson"
    response = await client.post("/v1/calendars/league", json={"code": "c"}, headers=headers)
    assert response.status == 400
    assert (await response.json())["errors"][0]["reason"].startswith("name:")
    response = await client.post("/v1/calendars/league", json={"code": "taken", "name": "n"}, headers=headers)
    assert response.status == 409
    assert (await response.json())["errors"][0]["code"] == "CalendarExists"
