"""A Google double: OAuth 2.0 (consent page, token, revoke, OpenID userinfo) and Calendar v3, on 127.0.0.1.

Google cannot be reached from here, so tests start this aiohttp app on a free port and point the
KALENDS_GOOGLE_* settings at it. It behaves as Google does where Kalends depends on it: PKCE (S256) is
checked, codes are single-use, `invalid_grant` answers revoked refresh tokens, access tokens expire
(401), and the Calendar API refuses every request Google's discovery document refuses (see
google_discovery.py). Every refusal of that kind is also recorded in `rejections`, which the tests
assert empty: a field Google would reject fails the test even where the code under test retried.

Failures on demand: `fail_next` (403 rateLimitExceeded, 429, 5xx), `expire_tokens` (401),
`revoke_user` (the user removes our access in their Google account), `delete_calendar` (the user
deletes our calendar: 404 by default, `gone_status=410` for 410).
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web

from tests.doubles.google_calendar import CalendarApi, GoogleCalendar

AUTH_PATH = "/o/oauth2/v2/auth"
TOKEN_PATH = "/token"
REVOKE_PATH = "/revoke"
USERINFO_PATH = "/v1/userinfo"
API_PATH = "/calendar/v3"
KNOWN_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/calendar",
        "https://www.googleapis.com/auth/calendar.app.created",
        "https://www.googleapis.com/auth/calendar.events",
        "https://www.googleapis.com/auth/userinfo.email",
    }
)
AUTH_PARAMS = frozenset(
    {
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "access_type",
        "prompt",
        "login_hint",
        "include_granted_scopes",
        "nonce",
        "hd",
        "enable_granular_consent",
    }
)
ACCESS_TOKEN_TTL = 3599


def oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


@dataclass
class Grant:
    """What one consent gave: a user, a client, scopes; its refresh token and live access tokens."""

    email: str
    client_id: str
    scopes: frozenset[str]
    refresh_token: str | None
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires_at: float


@dataclass
class PendingCode:
    grant: Grant
    redirect_uri: str
    challenge: str | None
    challenge_method: str
    used: bool = False


@dataclass
class Injected:
    status: int
    reason: str
    retry_after: str | None = None


@dataclass
class GoogleDouble:
    """The double's state and its controls; `start()` serves it on a free port."""

    client_id: str = "kalends-test.apps.googleusercontent.com"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    gone_status: int = 404
    default_email: str | None = None
    grants: list[Grant] = field(default_factory=list)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    codes: dict[str, PendingCode] = field(default_factory=dict)
    consents: dict[str, dict[str, str]] = field(default_factory=dict)
    calendars: dict[str, GoogleCalendar] = field(default_factory=dict)
    rejections: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    revoked: list[str] = field(default_factory=list)  # emails whose grant Kalends revoked
    _injected: dict[str, list[Injected]] = field(default_factory=lambda: defaultdict(list))
    _emails: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    port: int = 0

    # --- lifecycle and settings -----------------------------------------------------------------

    async def start(self) -> GoogleDouble:
        app = web.Application()
        app.router.add_get(AUTH_PATH, self._consent_page)
        app.router.add_post(AUTH_PATH + "/decision", self._decision)
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post(REVOKE_PATH, self._revoke)
        app.router.add_get(USERINFO_PATH, self._userinfo)
        CalendarApi(self).add_routes(app, API_PATH)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self) -> dict[str, str]:
        """The KALENDS_GOOGLE_* environment that points a service at this double."""
        return {
            "KALENDS_GOOGLE_CLIENT_ID": self.client_id,
            "KALENDS_GOOGLE_CLIENT_SECRET": self.client_secret,
            "KALENDS_GOOGLE_AUTH_URL": self.url + AUTH_PATH,
            "KALENDS_GOOGLE_TOKEN_URL": self.url + TOKEN_PATH,
            "KALENDS_GOOGLE_USERINFO_URL": self.url + USERINFO_PATH,
            "KALENDS_GOOGLE_REVOKE_URL": self.url + REVOKE_PATH,
            "KALENDS_GOOGLE_API_URL": self.url + API_PATH,
            "KALENDS_GOOGLE_BATCH_URL": self.url + "/batch/calendar/v3",
        }

    # --- controls -------------------------------------------------------------------------------

    def fail_next(self, email: str, status: int, reason: str = "rateLimitExceeded", times: int = 1) -> None:
        """The next `times` Calendar API calls of this user fail so (403/429 rateLimitExceeded, 5xx)."""
        self._injected[email].extend(Injected(status, reason) for _ in range(times))

    def take_injected(self, email: str) -> Injected | None:
        queue = self._injected.get(email)
        return queue.pop(0) if queue else None

    def expire_tokens(self, email: str) -> None:
        for token in self.access_tokens.values():
            if token.grant.email == email:
                token.expires_at = 0

    def revoke_user(self, email: str) -> None:
        """The user removes our access in their Google account: every grant and token dies."""
        for grant in self.grants:
            if grant.email == email:
                grant.revoked = True

    def delete_calendar(self, calendar_id: str) -> None:
        self.calendars[calendar_id].deleted = True

    def calendars_of(self, email: str) -> list[GoogleCalendar]:
        return [c for c in self.calendars.values() if c.owner == email and not c.deleted]

    def live_grants(self, email: str) -> list[Grant]:
        return [g for g in self.grants if g.email == email and not g.revoked]

    def token_owner(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or found.grant.revoked or found.expires_at < time.time():
            return None
        return found

    # --- consent --------------------------------------------------------------------------------

    async def _consent_page(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        unknown = sorted(set(query) - AUTH_PARAMS)
        problem = None
        if query.get("client_id") != self.client_id:
            problem = "Error 401: invalid_client. The OAuth client was not found."
        elif not query.get("redirect_uri") or urlsplit(query["redirect_uri"]).scheme not in ("http", "https"):
            problem = "Error 400: redirect_uri_mismatch"
        elif unknown:
            problem = f"Error 400: invalid_request. Unknown parameter(s): {', '.join(unknown)}"
        elif query.get("response_type") != "code":
            problem = "Error 400: invalid_request. response_type must be code"
        elif not query.get("scope") or not set(query["scope"].split()) <= KNOWN_SCOPES:
            problem = f"Error 400: invalid_scope. Some requested scopes were invalid: {query.get('scope')}"
        elif query.get("code_challenge_method", "plain") not in ("S256", "plain") or (
            "code_challenge_method" in query and not query.get("code_challenge")
        ):
            problem = "Error 400: invalid_request. Invalid code_challenge_method"
        if problem is not None:
            self.rejections.append(f"consent: {problem}")
            return web.Response(status=400, text=f"<h1>{html.escape(problem)}</h1>", content_type="text/html")
        consent_id = secrets.token_urlsafe(12)
        self.consents[consent_id] = query
        email = query.get("login_hint") or self.default_email or f"subscriber{next(self._emails)}@gmail.test"
        page = f"""<!doctype html><html lang="en"><head><title>Sign in - Google Accounts</title></head>
<body><h1>Kalends wants to access your Google Account</h1>
<p>Scopes: {html.escape(query["scope"])}</p>
<form method="post" action="{AUTH_PATH}/decision">
<input type="hidden" name="consent" value="{consent_id}">
<label>Account <input id="email" name="email" value="{html.escape(email)}"></label>
<button id="cancel" type="submit" name="decision" value="cancel">Cancel</button>
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
</form></body></html>"""
        return web.Response(text=page, content_type="text/html")

    async def _decision(self, request: web.Request) -> web.Response:
        form = await request.post()
        query = self.consents.pop(str(form.get("consent", "")), None)
        if query is None:
            return web.Response(status=400, text="this consent page has expired")
        params: dict[str, str] = {}
        if form.get("decision") == "allow":
            email = str(form.get("email") or "").strip().lower()
            scopes = frozenset(query["scope"].split())
            offline = query.get("access_type") == "offline"
            grant = Grant(email, self.client_id, scopes, secrets.token_urlsafe(24) if offline else None)
            self.grants.append(grant)
            if grant.refresh_token:
                self.refresh_tokens[grant.refresh_token] = grant
            code = "4/" + secrets.token_urlsafe(24)
            self.codes[code] = PendingCode(
                grant, query["redirect_uri"], query.get("code_challenge"), query.get("code_challenge_method", "plain")
            )
            params = {"code": code, "scope": query["scope"]}
        else:
            params = {"error": "access_denied"}
        if "state" in query:
            params["state"] = query["state"]
        raise web.HTTPFound(query["redirect_uri"] + ("&" if "?" in query["redirect_uri"] else "?") + urlencode(params))

    async def consent(self, consent_url: str, email: str, *, allow: bool = True) -> str:
        """What a person does in the browser, over plain HTTP: open the page, press Allow or Cancel.
        Returns the Location Google sends the browser to (the redirect_uri with code or error)."""
        query = dict(parse_qsl(urlsplit(consent_url).query))
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + AUTH_PATH, params=query) as page:
                text = await page.text()
                assert page.status == 200, text
            consent_id = text.split('name="consent" value="')[1].split('"')[0]
            form = {"consent": consent_id, "email": email, "decision": "allow" if allow else "cancel"}
            async with session.post(self.url + AUTH_PATH + "/decision", data=form, allow_redirects=False) as answer:
                assert answer.status == 302, await answer.text()
                return answer.headers["Location"]

    # --- token, revoke, userinfo ----------------------------------------------------------------

    def _client(self, request: web.Request, form: dict[str, str]) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user == self.client_id and password == self.client_secret
        return form.get("client_id") == self.client_id and form.get("client_secret") == self.client_secret

    def _issue(self, grant: Grant, with_refresh: bool) -> dict[str, Any]:
        token = "ya29." + secrets.token_urlsafe(32)
        self.access_tokens[token] = AccessToken(grant, time.time() + ACCESS_TOKEN_TTL)
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": ACCESS_TOKEN_TTL,
            "scope": " ".join(sorted(grant.scopes)),
            "token_type": "Bearer",
        }
        if with_refresh and grant.refresh_token:
            body["refresh_token"] = grant.refresh_token
        return body

    async def _token(self, request: web.Request) -> web.Response:
        self.calls["oauth.token"] += 1
        if request.content_type != "application/x-www-form-urlencoded":
            return oauth_error(400, "invalid_request", "Invalid content type; use application/x-www-form-urlencoded")
        form = {k: str(v) for k, v in (await request.post()).items()}
        if not self._client(request, form):
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._exchange(form)
        if grant_type == "refresh_token":
            grant = self.refresh_tokens.get(form.get("refresh_token", ""))
            if grant is None or grant.revoked:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            return web.json_response(self._issue(grant, with_refresh=False))
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _exchange(self, form: dict[str, str]) -> web.Response:
        if not form.get("code"):
            return oauth_error(400, "invalid_request", "Missing required parameter: code")
        pending = self.codes.get(form["code"])
        if pending is None:
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        if pending.used or pending.grant.revoked:
            pending.grant.revoked = True  # a replayed code revokes what it gave (RFC 6749 4.1.2)
            return oauth_error(400, "invalid_grant", "Bad Request")
        if form.get("redirect_uri") != pending.redirect_uri:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        if pending.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return oauth_error(400, "invalid_grant", "Missing code verifier.")
            if pending.challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                computed = verifier
            if computed != pending.challenge:
                return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        pending.used = True
        return web.json_response(self._issue(pending.grant, with_refresh=True))

    async def _revoke(self, request: web.Request) -> web.Response:
        self.calls["oauth.revoke"] += 1
        form = await request.post()
        token = str(form.get("token") or request.query.get("token") or "")
        grant = self.refresh_tokens.get(token)
        if grant is None and token in self.access_tokens:
            grant = self.access_tokens[token].grant
        if grant is None or grant.revoked:
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        grant.revoked = True
        self.revoked.append(grant.email)
        return web.json_response({})

    async def _userinfo(self, request: web.Request) -> web.Response:
        self.calls["oauth.userinfo"] += 1
        token = self.token_owner(request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
        if token is None:
            return oauth_error(401, "invalid_request", "Invalid Credentials")
        email = token.grant.email
        body: dict[str, Any] = {"sub": hashlib.sha256(email.encode()).hexdigest()[:21]}
        if "email" in token.grant.scopes:
            body.update({"email": email, "email_verified": True})
        return web.json_response(body)
