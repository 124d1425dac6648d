"""Rotate-credentials: a protected subscription's feed password replaced on purpose."""

from __future__ import annotations

import asyncpg

from services.ingest.adapters.credentials import store_feed_credentials
from services.ingest.domain.credentials import issue, needs_credentials
from services.ingest.domain.subscriptions import webcal_url
from services.ingest.services._base import Account, Subscribed
from services.ingest.services.subscriptions import SubscriptionUseCases
from shared.errors import Conflict


class CredentialUseCases(SubscriptionUseCases):
    """Issuing a subscription new feed credentials; the old ones stop working at the feed."""

    async def rotate_credentials(self, account: Account, code: str, subscription_id: str) -> Subscribed:
        async def work(conn: asyncpg.Connection) -> Subscribed:
            calendar, row = await self._owned_subscription(conn, account, code, subscription_id, "subscriptionId")
            if not row["active"]:
                raise Conflict("this subscription has been deactivated", code="SubscriptionInactive")
            if not needs_credentials(True, row["subscription_type"]):
                raise Conflict(
                    f"a {row['subscription_type']} subscription is not fetched by URL: it has no feed credentials",
                    code="NotAWebcalSubscription",
                )
            if not calendar["protected"]:
                raise Conflict(
                    f"calendar '{calendar['code']}' is not protected: its feeds need no credentials",
                    code="CalendarNotProtected",
                )
            credentials = issue(self._secrets, row["subscriber_id"])
            saved = await store_feed_credentials(conn, row["subscription_id"], credentials, new_version=True)
            message = await self._subscription_message(conn, saved, calendar, account)
            await self._publish(conn, account, [("subscription.updated", message)])
            return Subscribed(
                subscription_id=saved["subscription_id"],
                subscriber_id=saved["subscriber_id"],
                subscription_type=saved["subscription_type"],
                is_new=False,
                subscription_url=webcal_url(
                    self._public_feed_url,
                    saved["subscription_id"],
                    username=credentials.username,
                    password=credentials.password,
                ),
                redirect_to=None,
            )

        return await self._transaction(work)
