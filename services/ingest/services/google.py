"""Google subscriptions on ingest's side: routing, the consent URL from sync, activation on consent.

A new Google subscription is stored inactive and not announced; sync hands out the consent URL
(it keeps the PKCE verifier and the single-use state) and, once the user consented and their
calendar is filled, announces `consent.granted`; only then does ingest activate the subscription and
announce it (`subscription.created`: the Subscribe webhook, the feed). Without a Google client id a
subscriber routed to Google by their device gets webcal, and an explicit Google request is a 409.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from services.ingest.adapters import repository as repo
from services.ingest.adapters.google_consent_client import GoogleConsentClient
from services.ingest.api.schemas import SubscribeBody
from services.ingest.domain.subscriptions import subscription_type
from services.ingest.services._base import Account, Subscribed
from services.ingest.services.subscriptions import SubscriptionUseCases
from shared.errors import ApiError, Conflict, InvalidRequest
from shared.messages import GoogleConsentGranted

GOOGLE_OFF = (
    "Google subscriptions are not enabled on this server (KALENDS_GOOGLE_CLIENT_ID is not set); "
    "use subscriptionMethod WebCal"
)


class GoogleUseCases(SubscriptionUseCases):
    """Subscribe with Google's consent, re-authorize, and activate on `consent.granted`."""

    google_enabled: bool = False
    consents: GoogleConsentClient | None = None

    def configure_google(self, enabled: bool, consents: GoogleConsentClient) -> None:
        self.google_enabled, self.consents = enabled, consents

    async def subscribe_routed(self, account: Account, code: str, body: SubscribeBody, bearer: str) -> Subscribed:
        """seed 002's subscribe: webcal as before; Google answers the consent URL as `redirectTo`."""
        kind = subscription_type(body.subscription_method, body.user_agent)
        if kind == "google" and not self.google_enabled:
            explicit = body.subscription_method is not None and body.subscription_method.strip() != ""
            if explicit:
                if not body.redirect_to:
                    raise InvalidRequest("redirectTo: required for a Google subscription")
                raise Conflict(GOOGLE_OFF, code="GoogleNotConfigured")
            body = body.model_copy(update={"subscription_method": "webcal"})  # never a dead end
        outcome = await self.subscribe(account, code, body, webcal_only=False, authorization=bearer)
        if outcome.subscription_type != "google":
            return outcome
        assert body.redirect_to is not None
        request: dict[str, Any] = {
            "subscriptionId": str(outcome.subscription_id),
            "redirectTo": body.redirect_to,
            "subscriberId": outcome.subscriber_id,
        }
        if outcome.pending is not None:
            request["subscription"] = outcome.pending.model_dump(mode="json", by_alias=True)
        else:
            request["ifNeeded"] = True  # an existing subscription needs consent only when Google revoked us
        url = await self._consent_url(bearer, account, code, request)
        if url is None:
            return outcome
        return Subscribed(
            subscription_id=outcome.subscription_id,
            subscriber_id=outcome.subscriber_id,
            subscription_type="google",
            is_new=True,  # the answer's shape: redirect the user to the consent screen
            subscription_url=None,
            redirect_to=url,
        )

    async def reauthorization(
        self, account: Account, code: str, row: asyncpg.Record, redirect_to: str | None, bearer: str
    ) -> str | None:
        """seed 002's Google Reauthorization: a fresh consent URL when Google revoked our access."""
        if row["subscription_type"] != "google" or not self.google_enabled or self.consents is None:
            return None
        target = redirect_to or row["details"].get("redirect_to")
        if not target:
            return None
        request = {
            "subscriptionId": str(row["subscription_id"]),
            "redirectTo": target,
            "subscriberId": row["subscriber_id"],
            "ifNeeded": True,
        }
        return await self._consent_url(bearer, account, code, request)

    async def _consent_url(self, bearer: str, account: Account, code: str, request: dict[str, Any]) -> str | None:
        assert self.consents is not None
        try:
            # accountId: what sync holds the consent to when the token is the web's platform token.
            request = {**request, "accountId": str(account.account_id)}
            return await self.consents.google_consent(bearer, account.account_code, code, request)
        except ApiError as exc:
            if request.get("ifNeeded") and exc.status == 404:
                return None  # sync has not seen this subscription yet: nothing of it can be revoked
            raise

    async def activate_google(self, conn: asyncpg.Connection, granted: GoogleConsentGranted) -> None:
        """`consent.granted` (sync): the pending subscription becomes active and is announced; a
        re-authorized one records its (possibly new) Google account. Runs in the consumer's transaction."""
        row = await repo.subscription_by_id(conn, granted.subscription_id, for_update=True)
        if row is None or row["deactivated_at"] is not None:
            return  # gone, or ended while the user was on the consent screen
        details = {
            **row["details"],
            "google_email": granted.google_email,
            "sync_connection_id": str(granted.connection_id),
        }
        calendar = await repo.calendar_by_id(conn, row["calendar_id"])
        owner = await repo.account_of(conn, row["account_id"])
        if calendar is None or owner is None:
            return
        account = Account(row["account_id"], owner["account_code"])
        was_active = row["active"]
        saved = await repo.activate_subscription(conn, row["subscription_id"], details)
        if saved is None:
            return  # the subscriber got another active Google subscription meanwhile
        message = await self._subscription_message(conn, saved, calendar, account)
        kind = "subscription.updated" if was_active else "subscription.created"
        await self._publish(conn, account, [(kind, message)])
