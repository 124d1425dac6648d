"""Convier requests stored by (account, uid) in PostgreSQL: updates raise SEQUENCE, removed
attendees get a CANCEL, a refused request leaves nothing behind."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
import pytest

from services.mail import services
from services.mail.adapters.smtp import Refusal, refused_recipients
from services.mail.convier_requests import RecipientCheck, send_request
from services.mail.domain.convier import ConvierError
from services.mail.domain.convier_request import parse_request
from services.mail.settings import parse_smtp_url
from shared.messages import EventData, Person
from shared.testing import free_port
from shared.testing_smtp import SmtpServer

MAIL_FROM = "calendar@kalends.test"


def event(*attendees: str, uid: str = "standup@acme") -> dict[str, object]:
    return {"event": {"uid": uid, "summary": "Standup", "start": "2026-05-04T09:00:00", "attendees": list(attendees)}}


async def sent(pool: asyncpg.Pool, account_id: uuid.UUID) -> list[tuple[str, str, int]]:
    rows = await pool.fetch(
        "SELECT attendee_email, method, sequence FROM mail.deliveries WHERE account_id = $1"
        " ORDER BY sequence, method, attendee_email",
        account_id,
    )
    return [(r["attendee_email"], r["method"], r["sequence"]) for r in rows]


async def test_the_same_uid_again_raises_sequence_and_cancels_the_removed_attendee(pool: asyncpg.Pool) -> None:
    account = uuid.uuid4()
    first = await send_request(pool, account, parse_request("event", event("a@x.org", "b@x.org")), mail_from=MAIL_FROM)
    second = await send_request(pool, account, parse_request("event", event("a@x.org")), mail_from=MAIL_FROM)
    assert (first.sequence, second.sequence, second.invited, second.cancelled) == (0, 1, 1, 1)
    assert await sent(pool, account) == [
        ("a@x.org", "REQUEST", 0),
        ("b@x.org", "REQUEST", 0),
        ("b@x.org", "CANCEL", 1),
        ("a@x.org", "REQUEST", 1),
    ]


async def test_a_uid_of_another_component_is_refused_and_changes_nothing(pool: asyncpg.Pool) -> None:
    account = uuid.uuid4()
    await send_request(pool, account, parse_request("event", event("a@x.org", uid="u-2")), mail_from=MAIL_FROM)
    todo = parse_request("todo", {"todo": {"uid": "u-2", "summary": "x", "attendees": ["c@x.org"]}})
    with pytest.raises(ConvierError) as caught:
        await send_request(pool, account, todo, mail_from=MAIL_FROM)
    assert caught.value.status == 402
    assert await sent(pool, account) == [("a@x.org", "REQUEST", 0)]
    assert await pool.fetchval("SELECT sequence FROM mail.convier_requests WHERE account_id = $1", account) == 0


async def test_method_cancel_cancels_everyone_invited(pool: asyncpg.Pool) -> None:
    account = uuid.uuid4()
    await send_request(pool, account, parse_request("event", event("a@x.org", uid="u-3")), mail_from=MAIL_FROM)
    cancel = parse_request("event", {**event("a@x.org", uid="u-3"), "method": "cancel"})
    result = await send_request(pool, account, cancel, mail_from=MAIL_FROM)
    assert (result.sequence, result.cancelled) == (1, 1)
    assert ("a@x.org", "CANCEL", 1) in await sent(pool, account)
    assert "STATUS:CANCELLED" in result.calendar


async def test_a_catalog_event_with_attendees_hidden_records_invitations_that_hide_the_others(
    pool: asyncpg.Pool,
) -> None:
    account = uuid.uuid4()
    now = datetime.now(UTC)
    hidden = EventData(
        event_id=uuid.uuid4(),
        calendar_id=uuid.uuid4(),
        account_id=account,
        sequence=0,
        changed_at=now,
        created_at=now,
        title="Kick-off",
        start="2026-12-10T18:00:00",
        end="2026-12-10T20:00:00",
        attendees=[Person(email="a@x.org"), Person(email="b@x.org")],
        notify=True,
        attendees_hidden=True,
    )
    async with pool.acquire() as conn, conn.transaction():
        await services.handle_event(conn, hidden, MAIL_FROM)
    assert await pool.fetchval("SELECT bool_and(hide_attendees) FROM mail.invitations WHERE account_id = $1", account)


# --- the SMTP server's word on the attendees, asked before anything is recorded -----------------------


def checker(smtp_url: str) -> RecipientCheck:
    async def check(addresses: Sequence[str]) -> list[Refusal] | None:
        return await refused_recipients(parse_smtp_url(smtp_url), MAIL_FROM, addresses, timeout=3.0)

    return check


async def test_an_address_the_smtp_server_refuses_is_402_naming_it_and_records_nothing(pool: asyncpg.Pool) -> None:
    server = SmtpServer().start()
    server.handler.refuse["nobody@x.org"] = "550 5.1.1 <nobody@x.org>: no such user here"
    try:
        account = uuid.uuid4()
        request = parse_request("event", event("a@x.org", "nobody@x.org", uid="refused@acme"))
        with pytest.raises(ConvierError) as refused:
            await send_request(pool, account, request, mail_from=MAIL_FROM, check=checker(server.url))
        assert refused.value.status == 402
        assert "nobody@x.org" in refused.value.message and "550 5.1.1" in refused.value.message
        assert "no such user here" in refused.value.message and "a@x.org" not in refused.value.message
        assert refused.value.message.startswith("Parameter event[attendees][1][email] is unusable")
        assert await sent(pool, account) == []
        assert await pool.fetchval("SELECT count(*) FROM mail.convier_requests WHERE account_id = $1", account) == 0
        assert server.received == []  # asked, never sent: no DATA
        assert server.handler.rcpt_answers[-2:] == ["250 OK", "550 5.1.1 <nobody@x.org>: no such user here"]

        # Without the refused address the same uid is a first request (SEQUENCE 0): nothing was kept.
        request = parse_request("event", event("a@x.org", uid="refused@acme"))
        result = await send_request(pool, account, request, mail_from=MAIL_FROM, check=checker(server.url))
        assert result.sequence == 0 and await sent(pool, account) == [("a@x.org", "REQUEST", 0)]
    finally:
        server.stop()


async def test_a_temporary_refusal_or_an_unreachable_server_is_no_402_the_invitations_wait_in_the_queue(
    pool: asyncpg.Pool,
) -> None:
    server = SmtpServer().start()
    server.handler.refuse["full@x.org"] = "452 4.2.2 mailbox full, try later"
    try:
        account = uuid.uuid4()
        request = parse_request("event", event("full@x.org", uid="later@acme"))
        await send_request(pool, account, request, mail_from=MAIL_FROM, check=checker(server.url))
        assert await sent(pool, account) == [("full@x.org", "REQUEST", 0)]
    finally:
        server.stop()
    closed = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    request = parse_request("event", event("b@x.org", uid="down@acme"))
    account = uuid.uuid4()
    result = await send_request(pool, account, request, mail_from=MAIL_FROM, check=checker(closed))
    assert result.invited == 1 and await sent(pool, account) == [("b@x.org", "REQUEST", 0)]
    status = await pool.fetchval("SELECT status FROM mail.deliveries WHERE account_id = $1", account)
    assert status == "queued"


async def test_a_server_that_never_answers_holds_the_request_no_longer_than_the_check_timeout(
    pool: asyncpg.Pool,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the connection, never greets

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:

        async def check(addresses: Sequence[str]) -> list[Refusal] | None:
            target = parse_smtp_url(f"smtp://127.0.0.1:{port}")
            return await refused_recipients(target, MAIL_FROM, addresses, timeout=1.0)

        account = uuid.uuid4()
        started = time.monotonic()
        result = await send_request(
            pool, account, parse_request("event", event("c@x.org", uid="silent@acme")), mail_from=MAIL_FROM, check=check
        )
        assert time.monotonic() - started < 3
        assert result.invited == 1 and await sent(pool, account) == [("c@x.org", "REQUEST", 0)]
    finally:
        server.close()
        await server.wait_closed()
