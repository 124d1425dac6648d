"""Fixtures of the webhook integration tests: a recording receiver, the webhook worker running in
this process against the test's own database and broker prefix, a shortened schedule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import pytest

from services.webhook.app import DISPATCHER, create_app
from services.webhook.messaging.topology import delete_topology
from services.webhook.settings import WebhookSettings
from shared.amqp import Names
from shared.crypto import SecretBox
from shared.messages import Envelope, SubscriptionData, SubscriptionTag, make_envelope
from shared.settings import PlatformSettings
from tests.integration.app_worker import AppWorker
from tests.integration.webhook.receiver import Receiver

SCHEDULE = (0.0, 1.0, 2.0, 3.0)
# One key list for the run: the in-process worker, the worker processes and the tests share it.
ENCRYPTION_KEY = SecretBox.generate_key()
BOX = SecretBox([ENCRYPTION_KEY])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
def webhook_settings(database_url: str, amqp_url: str, amqp_names: Names) -> WebhookSettings:
    return WebhookSettings(
        platform=PlatformSettings(database_url=database_url, amqp_url=amqp_url, amqp_prefix=amqp_names.prefix),
        retry_schedule=SCHEDULE,
        timeout=1.0,
        allow_private=True,
        sweep_interval=0.2,
        sweep_grace=0.5,
        box=BOX,
    )


class Worker(AppWorker[WebhookSettings]):
    """The webhook service's worker half (consumer, relay, dispatcher) in this process."""

    def __init__(self, settings: WebhookSettings) -> None:
        super().__init__(create_app, settings)

    @property
    def dispatcher(self) -> Any:
        return self.app[DISPATCHER]


@pytest.fixture
async def worker(
    webhook_settings: WebhookSettings, amqp_connection: aio_pika.abc.AbstractRobustConnection, amqp_names: Names
) -> AsyncIterator[Worker]:
    w = await Worker(webhook_settings).start()
    yield w
    await w.stop()
    channel = await amqp_connection.channel()
    await delete_topology(channel, amqp_names, SCHEDULE)


def subscription(account_id: uuid.UUID, **overrides: Any) -> SubscriptionData:
    """A subscription as ingest publishes it, every webhook field filled."""
    values: dict[str, Any] = {
        "subscription_id": uuid.UUID("a3811c49-2589-4f4b-870c-b883fe0c1e17"),
        "account_id": account_id,
        "account_code": "acme",
        "merchant_name": "Your Account",
        "calendar_id": uuid.UUID("4a2d4acb-bd05-e511-af43-067f1c947754"),
        "calendar_code": "sports",
        "calendar_title": "My Sports Calendar",
        "subscription_type": "google",
        "subscriber_id": "crm-42",
        "created_at": datetime(2017, 3, 15, 3, 48, 24, 822495, tzinfo=UTC),
        "action_type": "SubscriptionViaCalendarPage",
        "calendar_tags": [SubscriptionTag(tag_id=uuid.UUID("6513319e-d3e1-4497-89ee-b5dcee9a58bc"), tag_text="Team G")],
        "time_zone_tag": "Eastern Standard Time",
        "email_address": "john.smith@gmail.com",
        "additional_opt_in": False,
        "marketing_allowed": True,
        "ip_address": "150.101.114.215",
        "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_3) AppleWebKit/537.36",
        "url_referrer": "http://google.com/",
        "device_name": "Desktop",
        "entered_post_code": "90210",
        "cable_provider": "DIRECTV",
        "cable_provider_location": "New York",
        "source": "youraccount.calreply.net",
        "utm_source": "Facebook",
        "utm_medium": "Display",
        "utm_campaign": "2017",
        "utm_content": "Mobile_320x50",
    }
    values.update(overrides)
    return SubscriptionData(**values)


def subscription_message(message_type: str, sub: SubscriptionData) -> Envelope:
    return make_envelope(message_type, sub, account_id=sub.account_id)
