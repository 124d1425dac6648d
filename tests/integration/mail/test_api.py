"""`GET /v1/mail/{accountCode}/deliveries`: the account's deliveries with their partstat, filtered
by uid and status; Bearer tokens held to their account."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.mail.app import create_app
from services.mail.messaging.topology import delete_topology
from services.mail.settings import MailSettings
from shared.amqp import Names
from tests.integration.ingest.conftest import Issuer, issuer  # noqa: F401 (the JWKS fixture)
from tests.integration.mail.conftest import Mailer, settled
from tests.integration.mail.test_sending import invite


@pytest.fixture
async def api(
    mail_settings: MailSettings,
    issuer: Issuer,  # noqa: F811
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    amqp_names: Names,
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    platform = dataclasses.replace(mail_settings.platform, auth_url=issuer.url)
    app = create_app(dataclasses.replace(mail_settings, platform=platform), "api")
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()
    await delete_topology(await amqp_connection.channel(), amqp_names)


async def test_the_deliveries_list_shows_each_attendee_with_status_and_partstat_filtered_by_uid_and_status(
    api: TestClient[web.Request, web.Application],
    mailer: Mailer,
    issuer: Issuer,  # noqa: F811
) -> None:
    await mailer.start()
    account, code = uuid.uuid4(), f"acct{uuid.uuid4().hex[:8]}"
    await invite(mailer.pool, account, ["ann@example.com", "bob@example.com"], uid="one@x")
    await invite(mailer.pool, account, ["cat@example.com"], uid="two@x")
    await settled(mailer.pool, account, 3)
    headers = {"Authorization": f"Bearer {issuer.token(account, code)}"}

    response = await api.get(f"/v1/mail/{code}/deliveries", params={"uid": "one@x"}, headers=headers)
    assert response.status == 200, await response.text()
    listed = (await response.json())["deliveries"]
    assert sorted(d["attendee"]["email"] for d in listed) == ["ann@example.com", "bob@example.com"]
    assert {(d["status"], d["partstat"], d["method"], d["smtpCode"]) for d in listed} == {
        ("sent", "NEEDS-ACTION", "REQUEST", 250)
    }
    response = await api.get(f"/v1/mail/{code}/deliveries", params={"status": "failed"}, headers=headers)
    assert (await response.json())["deliveries"] == []
    response = await api.get(f"/v1/mail/{code}/deliveries", params={"status": "lost"}, headers=headers)
    assert response.status == 400
    assert (await response.json())["errors"][0]["reason"].startswith("status: must be one of queued, sent, failed")
    for limit in ("\u00b2", "9" * 5000, "0"):  # the first two were 500s (str.isdigit() let them through to int())
        response = await api.get(f"/v1/mail/{code}/deliveries", params={"limit": limit}, headers=headers)
        assert response.status == 400, (limit, response.status)
        assert (await response.json())["errors"][0]["reason"].startswith("limit: must be a whole number")

    other = {"Authorization": f"Bearer {issuer.token(uuid.uuid4(), 'someoneelse')}"}
    assert (await api.get(f"/v1/mail/{code}/deliveries", headers=other)).status == 403
    assert (await api.get(f"/v1/mail/{code}/deliveries")).status == 401
