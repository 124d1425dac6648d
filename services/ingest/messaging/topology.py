"""The queues the ingest service consumes (declared by shared.consumer from these specs)."""

from __future__ import annotations

from shared.consumer import QueueSpec

# Account names come from auth; merchantName in subscription messages is read from here.
ACCOUNTS_QUEUE = QueueSpec(name="ingest.accounts", routing_keys=("account.created",))

# sync stopped pushing a subscription for good (calendar deleted by its user, credentials refused):
# ingest deactivates it, which tells feed, sync and the webhooks (Unsubscribe).
PUSH_QUEUE = QueueSpec(name="ingest.push", routing_keys=("push.stopped",))

# API keys from auth (hashes only): X-API-KEY on the Unipile route.
API_KEYS_QUEUE = QueueSpec(name="ingest.api_keys", routing_keys=("api_key.created", "api_key.revoked"))

# An attendee answered a mail invitation: ingest records the PARTSTAT on the event's attendee
# (the catalog and the feed show it). One at a time, so two answers to one event never race.
REPLIES_QUEUE = QueueSpec(name="ingest.replies", routing_keys=("attendee.replied",), concurrency=1)
# sync's word that a subscriber consented on Google's screen: ingest activates the subscription.
GOOGLE_QUEUE = QueueSpec(name="ingest.google", routing_keys=("consent.granted",))
