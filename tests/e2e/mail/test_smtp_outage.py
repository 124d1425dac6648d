"""The SMTP server down for a minute, with auth and mail as processes: Convier requests made during
the outage are accepted (the recipient check cannot reach the server, which is no refusal), their
invitations wait in the queue and are retried on a short KALENDS_MAIL_RETRY_SCHEDULE, and once the
server is back every invitation arrives exactly once, the ones sent before the outage not again."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp
import pytest
from icalendar import Calendar

from shared.testing import Stack
from shared.testing_smtp import Received, SmtpServer

pytestmark = pytest.mark.e2e

OUTAGE = 60.0  # seconds, as the issue asks
# Every 2 s at first, then every 5 s, then every second around the end of the outage, so an
# invitation waits at most about a second once the server is back; the window closes at 120 s.
SCHEDULE = "0,2,4,6,8,10,15,20,25,30,35,40,45,50,55,58,59,60,61,62,63,64,65,66,67,68,69,70,75,80,90,120"


def event(uid: str, summary: str, *attendees: str) -> dict[str, Any]:
    return {
        "event": {
            "uid": uid,
            "summary": summary,
            "start": {"date": "2026-06-02T18:00:00", "timezone": "Europe/Madrid"},
            "attendees": [{"email": a} for a in attendees],
        }
    }


def key_of(received: Received) -> tuple[str, str, int]:
    """(recipient, UID, SEQUENCE) of one received invitation."""
    part = next(p for p in received.parsed().walk() if p.get_content_type() == "text/calendar")
    vevent = Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")[0]
    (recipient,) = received.recipients
    return recipient, str(vevent["UID"]), int(vevent["SEQUENCE"])


async def test_after_a_minute_without_smtp_every_invitation_arrives_exactly_once(stack: Stack) -> None:
    smtp = SmtpServer().start()
    try:
        await stack.start("auth")
        env = {
            "KALENDS_SMTP_URL": smtp.url,
            "KALENDS_MAIL_FROM": "calendar@kalends.test",
            "KALENDS_MAIL_RETRY_SCHEDULE": SCHEDULE,
            "KALENDS_SMTP_TIMEOUT": "2",  # a connection the stopped server left open fails in 2 s
        }
        await stack.start("mail", env=env)
        account = await stack.new_account(name="Outage")
        code, token = account["accountCode"], await stack.token(account)
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=headers) as http:

            async def convier(body: dict[str, Any]) -> dict[str, Any]:
                async with http.post(stack.url("mail") + "/api/event", json=body) as response:
                    answer: dict[str, Any] = await response.json()
                    assert response.status == 200, answer
                    return answer

            async def deliveries() -> list[dict[str, Any]]:
                async with http.get(stack.url("mail") + f"/v1/mail/{code}/deliveries") as response:
                    assert response.status == 200
                    return list((await response.json())["deliveries"])

            before = ["ann@example.com", "bob@example.com"]
            await convier(event("review@acme", "Review", *before))
            await smtp.wait_for(2, timeout=20)

            smtp.stop()
            stopped = time.monotonic()
            # During the outage: an update of the first request (SEQUENCE 1 to both) and a new one.
            during = ["cat@example.com", "dan@example.com", "eve@example.com"]
            started = time.monotonic()
            assert (await convier(event("review@acme", "Review (moved)", *before)))["uid"] == "review@acme"
            await convier(event("launch@acme", "Launch", *during))
            assert time.monotonic() - started < 10  # an unreachable server is no reason to wait long
            await asyncio.sleep(15)
            waiting = [d for d in await deliveries() if d["status"] != "sent"]
            assert len(waiting) == 5 and {d["status"] for d in waiting} == {"queued"}
            assert max(d["attempts"] for d in waiting) >= 2  # retried during the outage already

            await asyncio.sleep(OUTAGE - (time.monotonic() - stopped))
            assert len(smtp.received) == 2  # what arrived before the outage, nothing since
            smtp.start()
            restarted = time.monotonic()
            await smtp.wait_for(7, timeout=15)
            assert time.monotonic() - restarted < 8
            await asyncio.sleep(3)  # long enough for a duplicate to show up (the schedule runs each second)

            counts = Counter(key_of(r) for r in smtp.received)
            assert counts == {
                ("ann@example.com", "review@acme", 0): 1,
                ("bob@example.com", "review@acme", 0): 1,
                ("ann@example.com", "review@acme", 1): 1,
                ("bob@example.com", "review@acme", 1): 1,
                ("cat@example.com", "launch@acme", 0): 1,
                ("dan@example.com", "launch@acme", 0): 1,
                ("eve@example.com", "launch@acme", 0): 1,
            }
            record = await deliveries()
            assert len(record) == 7 and {d["status"] for d in record} == {"sent"}
    finally:
        smtp.stop()
