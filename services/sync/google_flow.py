"""Google consent use-cases: hand out a consent URL for a subscription, and complete it on the callback.

ingest owns subscriptions: it asks for a consent URL (`consent`) when a Google subscription is made
or needs re-authorization, and activates the subscription when this service announces
`consent.granted`. Between the two, the callback exchanges the code (PKCE), reads the user's email,
stores the tokens encrypted, creates the calendar and pushes every event (the push engine's own
reconcile), so the subscriber sees a full calendar when they land on the merchant's page.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
from pydantic import ValidationError

from services.sync.adapters import google_repository as google_repo
from services.sync.adapters import repository as repo
from services.sync.adapters.google import GoogleProvider
from services.sync.domain.google_consent import (
    InvalidState,
    consent_url,
    new_pkce,
    new_state,
    read_state,
    redirect_uri,
)
from services.sync.domain.provider import ProviderError
from services.sync.messaging.projection import apply_subscription
from shared import outbox
from shared.crypto import SecretBox
from shared.errors import ApiError, Conflict, Forbidden, InvalidRequest, NotFound
from shared.logging import get_logger
from shared.messages import GoogleConsentGranted, SubscriptionData, make_envelope

log = get_logger(__name__)
SCHEMA = repo.SCHEMA
ACTIVATION_WAIT = 5.0
CLAIM_SECONDS = 120.0  # seconds the callback waits for ingest to show the subscription active

Reconcile = Callable[[uuid.UUID], Awaitable[datetime | None]]


class GoogleNotConfigured(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "Google subscriptions are not enabled on this server (KALENDS_GOOGLE_CLIENT_ID is not set); "
            "use subscriptionMethod WebCal",
            code="GoogleNotConfigured",
        )


class CalendarUnavailable(ApiError):
    def __init__(self) -> None:
        super().__init__("the merchant's calendar is not available (deleted, or not yet known); subscribe again")


class BadCallback(ApiError):
    """A callback that cannot be tied to a consent we handed out: nowhere safe to redirect to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, code="InvalidState", status=400)


@dataclass(frozen=True)
class ConsentRequest:
    subscription_id: uuid.UUID
    redirect_to: str
    subscriber_id: str | None
    subscription: dict[str, Any] | None  # SubscriptionData of a new, pending subscription
    if_needed: bool


def result_url(redirect_to: str, params: dict[str, str]) -> str:
    """The merchant's page with seed 002's result query parameters appended."""
    return redirect_to + ("&" if "?" in redirect_to else "?") + urlencode(params)


def _failure(consent: asyncpg.Record, code: str, reason: str) -> str:
    params = {"success": "false", "errors": json.dumps([{"code": code, "reason": reason}])}
    if consent["subscriber_id"]:
        params["subscriberId"] = consent["subscriber_id"]
    if not consent["is_new"]:
        params["subscriptionId"] = str(consent["subscription_id"])
    return result_url(consent["redirect_to"], params)


class GoogleFlow:
    def __init__(
        self,
        pool: asyncpg.Pool,
        box: SecretBox,
        public_sync_url: str,
        provider: GoogleProvider | None,
        reconcile: Reconcile,
    ) -> None:
        self._pool, self._box, self._public_sync_url = pool, box, public_sync_url
        self._provider, self._reconcile = provider, reconcile

    def _google(self) -> GoogleProvider:
        if self._provider is None:
            raise GoogleNotConfigured()
        return self._provider

    async def consent(self, account_id: uuid.UUID, request: ConsentRequest) -> str | None:
        """A fresh consent URL for the subscription; with `if_needed`, only when its Google access
        was revoked (None when pushing works)."""
        google = self._google()
        async with self._pool.acquire() as conn:
            await self._check_owner(conn, account_id, request)
            login_hint = None
            if request.if_needed:
                waiting = await google_repo.needs_consent(conn, request.subscription_id)
                if waiting is None:
                    return None
                login_hint = waiting["remote_user"]
            pkce = new_pkce()
            state, text = new_state(self._box, request.subscription_id)
            await google_repo.insert_consent(
                conn,
                nonce=state.nonce,
                subscription_id=request.subscription_id,
                account_id=account_id,
                subscriber_id=request.subscriber_id,
                redirect_to=request.redirect_to,
                verifier=self._box.encrypt(pkce.verifier),
                subscription=request.subscription,
                expires_at=state.expires_at,
            )
        return consent_url(
            google.settings.auth_url,
            client_id=google.settings.client_id,
            public_sync_url=self._public_sync_url,
            state=text,
            challenge=pkce.challenge,
            login_hint=login_hint,
        )

    @staticmethod
    async def _check_owner(conn: asyncpg.Connection, account_id: uuid.UUID, request: ConsentRequest) -> None:
        """A merchant asks consent only for its own subscriptions, of its own calendars."""
        stored = await conn.fetchval(
            "SELECT account_id FROM sync.subscriptions WHERE subscription_id = $1", request.subscription_id
        )
        if request.subscription is None:
            if stored != account_id:
                raise NotFound("subscriptionId: no such Google subscription", code="SubscriptionNotFound")
            return
        try:
            data = SubscriptionData.model_validate(request.subscription)
        except ValidationError:
            raise InvalidRequest("subscription: not a subscription message") from None
        calendar = await repo.calendar(conn, data.calendar_id)
        if (
            data.account_id != account_id
            or data.subscription_id != request.subscription_id
            or (stored is not None and stored != account_id)
            or (calendar is not None and calendar["account_id"] != account_id)
        ):
            raise Forbidden("subscription: it belongs to another account")

    async def callback(self, query: dict[str, str]) -> str:
        """Where the browser goes next: the merchant's page with the result parameters."""
        google = self._google()
        if not query.get("state"):
            raise BadCallback("state: missing; open the consent link the merchant's page gave you")
        try:
            state = read_state(self._box, query["state"])
        except InvalidState as exc:
            raise BadCallback(f"state: {exc}") from None
        async with self._pool.acquire() as conn:
            consent = await google_repo.use_consent(conn, state.nonce)
        if consent is None or consent["subscription_id"] != state.subscription_id:
            raise BadCallback("state: this consent was already completed; start the subscription again")
        if query.get("error"):
            denied = query["error"] == "access_denied"
            code, reason = (
                ("AccessDenied", "the Google account owner declined access to their calendar")
                if denied
                else ("GoogleError", f"Google answered {query['error'][:100]}")
            )
            return _failure(consent, code, reason)
        if not query.get("code"):
            return _failure(consent, "GoogleError", "Google sent neither a code nor an error")
        try:
            verifier = self._box.decrypt(consent["verifier"])
            tokens = await google.oauth.exchange(query["code"], verifier, redirect_uri(self._public_sync_url))
            email = await google.oauth.email(tokens.access_token)
        except ProviderError as exc:
            log.warning("google.exchange_failed", reason=exc.reason)
            return _failure(consent, "GoogleRefused", exc.reason)
        if tokens.refresh_token is None:
            return _failure(consent, "GoogleRefused", "Google gave no refresh token; consent again")
        try:
            connection_id = await self._connect(consent, email, tokens.credentials())
        except CalendarUnavailable as exc:
            return _failure(consent, "CalendarNotFound", exc.reason)
        before = await self._version(consent["subscription_id"])
        try:
            due = await self._reconcile(consent["subscription_id"])
        finally:
            async with self._pool.acquire() as conn:
                await google_repo.release_claim(conn, consent["subscription_id"])
        if due is not None:
            log.info("google.first_push_deferred", subscription_id=str(consent["subscription_id"]), due=str(due))
        await self._announce(consent, connection_id, email)
        await self._wait_for_activation(consent["subscription_id"], before)
        params = {"success": "true", "new": str(consent["is_new"]).lower()}
        if consent["subscriber_id"]:
            params["subscriberId"] = consent["subscriber_id"]
        params["subscriptionId"] = str(consent["subscription_id"])
        return result_url(consent["redirect_to"], params)

    async def _connect(self, consent: asyncpg.Record, email: str, credentials: dict[str, Any]) -> uuid.UUID:
        """Store the tokens (one connection per merchant and Google user) and point the subscription at it."""
        sealed = self._box.encrypt(json.dumps(credentials))
        async with self._pool.acquire() as conn, conn.transaction():
            existing = await google_repo.google_connection(conn, consent["account_id"], email)
            if existing is not None:
                connection_id: uuid.UUID = existing["connection_id"]
                await google_repo.reconnect(conn, connection_id, sealed)
            else:
                connection_id = uuid.uuid4()
                await repo.insert_connection(
                    conn,
                    connection_id=connection_id,
                    account_id=consent["account_id"],
                    provider="google",
                    remote_user=email,
                    credentials=sealed,
                    remote_calendar_id=None,
                )
            if consent["is_new"]:
                data = SubscriptionData.model_validate(consent["subscription"])
                calendar = await repo.calendar(conn, data.calendar_id)
                if calendar is None or calendar["account_id"] != consent["account_id"] or calendar["deleted"]:
                    raise CalendarUnavailable()
                await apply_subscription(
                    conn, data.model_copy(update={"active": True, "sync_connection_id": connection_id})
                )
            else:
                await google_repo.retarget(conn, consent["subscription_id"], connection_id)
                # Every subscription waiting on this Google user's consent goes on now.
                await repo.mark(conn, await google_repo.subscriptions_of(conn, connection_id))
            # The callback pushes this subscription itself: the engine keeps off it meanwhile (one
            # calendar, not two made at once).
            await google_repo.hold_claim(conn, consent["subscription_id"], CLAIM_SECONDS)
        return connection_id

    async def _announce(self, consent: asyncpg.Record, connection_id: uuid.UUID, email: str) -> None:
        message = GoogleConsentGranted(
            subscription_id=consent["subscription_id"],
            account_id=consent["account_id"],
            connection_id=connection_id,
            google_email=email,
            is_new=consent["is_new"],
            granted_at=datetime.now(UTC),
        )
        async with self._pool.acquire() as conn, conn.transaction():
            envelope = make_envelope("consent.granted", message, account_id=consent["account_id"])
            await outbox.enqueue(conn, SCHEMA, [envelope])

    async def _version(self, subscription_id: uuid.UUID) -> int:
        async with self._pool.acquire() as conn:
            return await repo.subscription_version_of(conn, subscription_id) or 0

    async def _wait_for_activation(self, subscription_id: uuid.UUID, before: int) -> None:
        """ingest activates the subscription on `consent.granted` and announces it; once this
        service has seen that, a GET on ingest answers `isActive: true`."""
        deadline = time.monotonic() + ACTIVATION_WAIT
        while time.monotonic() < deadline:
            if await self._version(subscription_id) > before:
                return
            await asyncio.sleep(0.05)
        log.warning("google.activation_slow", subscription_id=str(subscription_id))


def valid_redirect(url: str) -> bool:
    """A page or an app deep link; never a scheme that runs code in the browser."""
    scheme = urlsplit(url).scheme.lower()
    return bool(scheme) and scheme not in ("javascript", "data", "vbscript", "file") and len(url) <= 2000


def parse_consent_request(body: dict[str, Any]) -> ConsentRequest:
    try:
        subscription_id = uuid.UUID(str(body.get("subscriptionId")))
    except ValueError:
        raise InvalidRequest("subscriptionId: a UUID is required") from None
    redirect_to = body.get("redirectTo")
    if not isinstance(redirect_to, str) or not valid_redirect(redirect_to):
        raise InvalidRequest("redirectTo: a URL (a page or an app deep link) is required for a Google subscription")
    subscription = body.get("subscription")
    if subscription is not None and not isinstance(subscription, dict):
        raise InvalidRequest("subscription: an object is required")
    subscriber = body.get("subscriberId")
    return ConsentRequest(
        subscription_id, redirect_to, str(subscriber) if subscriber else None, subscription, bool(body.get("ifNeeded"))
    )
