"""The ingest use-cases: each validates, writes its rows and its outbox messages in one transaction.

Handlers call exactly one method of `Ingest`. Messages are enqueued with the change they announce
(shared.outbox), so a write is published exactly when it commits. The use-cases are split by what
they are about (catalog, subscriptions, subscription events); `Ingest` is their union.
"""

from services.ingest.services._base import Account, Limits, Subscribed, SubscriptionView
from services.ingest.services.credentials import CredentialUseCases
from services.ingest.services.google import GoogleUseCases
from services.ingest.services.reports import ReportUseCases
from services.ingest.services.subscription_events import SubscriptionEventUseCases


class Ingest(SubscriptionEventUseCases, CredentialUseCases, GoogleUseCases, ReportUseCases):
    """The composition root's one object of use-cases, over a pool, the public feed URL and the key list."""


__all__ = ["Account", "Ingest", "Limits", "Subscribed", "SubscriptionView"]
