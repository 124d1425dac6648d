"""Batch claims and batch records against real PostgreSQL: concurrent dispatchers never claim the
same attempt, per-endpoint limits and order hold, a live lease is respected and an expired one taken
over, and one batch records mixed outcomes as single attempts would."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import asyncpg

from services.webhook import attempts, services
from services.webhook.adapters import repository as repo
from services.webhook.adapters.repository import ORPHANED_ATTEMPT
from services.webhook.adapters.sender import AttemptOutcome
from tests.integration.webhook.conftest import BOX, SCHEDULE

LEASE = 30.0


async def endpoint(pool: asyncpg.Pool, account: uuid.UUID, path: str = "/hook") -> repo.Endpoint:
    return await services.create_endpoint(
        pool,
        account,
        url=f"http://127.0.0.1:9{path}",
        event_types=None,
        enabled=True,
        description="",
        allow_private=True,
        box=BOX,
    )


async def due_deliveries(pool: asyncpg.Pool, account: uuid.UUID, endpoint_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """`count` events with a delivery each, due now, created one after another."""
    made: list[uuid.UUID] = []
    for i in range(count):
        async with pool.acquire() as conn:
            made += await repo.insert_events(
                conn,
                [
                    repo.NewEvent(
                        event_id=uuid.uuid4(),
                        account_id=account,
                        event_type="Test",
                        body=b'{"n": %d}' % i,
                        endpoint_ids=[endpoint_id],
                    )
                ],
            )
    return made


async def claim(
    pool: asyncpg.Pool, limit: int, endpoint_limit: int = 100, active: dict[uuid.UUID, int] | None = None
) -> list[repo.ClaimedAttempt]:
    return await attempts.claim_batch(
        pool, BOX, limit=limit, endpoint_limit=endpoint_limit, active=active or {}, lease=LEASE
    )


async def test_two_dispatchers_claiming_at_once_never_claim_the_same_delivery(database_url: str) -> None:
    pools = [await asyncpg.create_pool(database_url, min_size=4, max_size=4) for _ in range(2)]
    try:
        account = uuid.uuid4()
        hook = await endpoint(pools[0], account)
        made = await due_deliveries(pools[0], account, hook.id, 300)

        async def unclaimed() -> int:
            async with pools[0].acquire() as conn:
                count: int = await conn.fetchval("SELECT count(*) FROM webhook.deliveries WHERE attempts_made = 0")
            return count

        async def dispatcher(pool: asyncpg.Pool) -> list[uuid.UUID]:
            taken: list[uuid.UUID] = []
            # An empty claim does not mean nothing is left: the other may hold the rows (SKIP LOCKED).
            while await unclaimed():
                batch = await asyncio.gather(*(claim(pool, 7, endpoint_limit=1000) for _ in range(3)))
                taken += [c.delivery_id for b in batch for c in b]
            return taken

        first, second = await asyncio.gather(dispatcher(pools[0]), dispatcher(pools[1]))
        everything = first + second
        assert len(everything) == len(set(everything)) == len(made)
        async with pools[0].acquire() as conn:
            leased = await conn.fetchval(
                "SELECT count(*) FROM webhook.deliveries WHERE attempts_made = 1 AND lease_until > now()"
            )
        # Each delivery counted its one attempt and is leased, once: an attempt's row comes with its outcome.
        assert leased == len(made)
        assert sorted(everything) == sorted(made)
    finally:
        for pool in pools:
            await pool.close()


async def test_a_claim_takes_at_most_the_endpoints_free_slots_oldest_first_and_still_serves_other_endpoints(
    pool: asyncpg.Pool,
) -> None:
    account = uuid.uuid4()
    busy, quiet = await endpoint(pool, account, "/busy"), await endpoint(pool, account, "/quiet")
    busy_made = await due_deliveries(pool, account, busy.id, 6)
    quiet_made = await due_deliveries(pool, account, quiet.id, 2)

    # Four allowed per endpoint, three already in flight to the busy one: one more for it.
    claimed = await claim(pool, 50, endpoint_limit=4, active={busy.id: 3})
    assert [c.delivery_id for c in claimed if c.endpoint_id == busy.id] == busy_made[:1]
    assert sorted(c.delivery_id for c in claimed if c.endpoint_id == quiet.id) == sorted(quiet_made)

    # Nothing in flight: the next four of the busy endpoint, in the order they were made.
    claimed = await claim(pool, 50, endpoint_limit=4)
    assert [c.delivery_id for c in claimed] == busy_made[1:5]
    assert {c.number for c in claimed} == {1}
    # The global limit holds too.
    assert await claim(pool, 0) == []


async def test_a_live_lease_is_respected_and_an_expired_one_is_taken_over_closing_the_orphaned_attempt(
    pool: asyncpg.Pool,
) -> None:
    account = uuid.uuid4()
    hook = await endpoint(pool, account)
    (delivery,) = await due_deliveries(pool, account, hook.id, 1)
    (first,) = await claim(pool, 10)
    assert await claim(pool, 10) == []  # held by a live worker

    async with pool.acquire() as conn:  # that worker died: its lease runs out
        await conn.execute(
            "UPDATE webhook.deliveries SET lease_until = now() - interval '1 second' WHERE id = $1", delivery
        )
    (second,) = await claim(pool, 10)
    assert (second.delivery_id, second.number) == (delivery, first.number + 1)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number, finished_at, succeeded, error FROM webhook.delivery_attempts WHERE delivery_id = $1"
            " ORDER BY number",
            delivery,
        )
    # The dead worker's attempt is on the record as orphaned; the new one is written with its outcome.
    assert [(r["number"], r["succeeded"], r["error"]) for r in rows] == [(1, False, ORPHANED_ATTEMPT)]
    assert rows[0]["finished_at"] is not None

    # A late outcome of the first attempt (that worker was slow, not dead) replaces the orphaned row;
    # the delivery stays with the worker that took it over.
    (result,) = await attempts.record_batch(
        pool, SCHEDULE, [attempts.SentAttempt(first, AttemptOutcome(True, 5.0, 200))], LEASE
    )
    assert result == ("superseded", None)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number, succeeded, status_code, error FROM webhook.delivery_attempts WHERE delivery_id = $1",
            delivery,
        )
        status = await conn.fetchval("SELECT status FROM webhook.deliveries WHERE id = $1", delivery)
    assert [(r["number"], r["succeeded"], r["status_code"], r["error"]) for r in rows] == [(1, True, 200, None)]
    assert status == "pending"


async def test_one_batch_records_a_success_a_retry_a_final_failure_and_a_superseded_attempt(pool: asyncpg.Pool) -> None:
    account = uuid.uuid4()
    hook = await endpoint(pool, account)
    made = await due_deliveries(pool, account, hook.id, 4)
    claimed = {c.delivery_id: c for c in await claim(pool, 10)}
    ok, retried, last, superseded = (claimed[d] for d in made)
    # `last` began long ago: its retry window has closed. `superseded` was taken over by another worker.
    last = dataclasses.replace(last, first_attempt_at=last.first_attempt_at - timedelta(hours=1))
    async with pool.acquire() as conn:
        await conn.execute("UPDATE webhook.deliveries SET attempts_made = 2 WHERE id = $1", superseded.delivery_id)

    def outcome(succeeded: bool) -> AttemptOutcome:
        return AttemptOutcome(
            succeeded=succeeded,
            duration_ms=1.5,
            status_code=200 if succeeded else 503,
            error=None if succeeded else "HTTP 503\x00",
            response_body=b"\x00\xff",
        )

    sent = [
        attempts.SentAttempt(ok, outcome(True)),
        attempts.SentAttempt(retried, outcome(False)),
        attempts.SentAttempt(last, outcome(False)),
        attempts.SentAttempt(superseded, outcome(True)),
    ]
    results = await attempts.record_batch(pool, SCHEDULE, sent, LEASE)
    assert results == [("succeeded", None), ("pending", 1), ("failed", None), ("superseded", None)]

    async with pool.acquire() as conn:
        rows = {
            r["id"]: r
            for r in await conn.fetch(
                "SELECT id, status, next_attempt_at, lease_until, failure_reason, completed_at FROM webhook.deliveries"
            )
        }
        stored = await conn.fetch(
            "SELECT succeeded, status_code, error, response_body FROM webhook.delivery_attempts ORDER BY delivery_id"
        )
    assert rows[ok.delivery_id]["status"] == "succeeded" and rows[ok.delivery_id]["completed_at"] is not None
    assert rows[retried.delivery_id]["status"] == "pending"
    assert rows[retried.delivery_id]["next_attempt_at"] == retried.first_attempt_at + timedelta(seconds=SCHEDULE[1])
    assert rows[retried.delivery_id]["lease_until"] is None
    assert rows[last.delivery_id]["status"] == "failed"
    assert rows[last.delivery_id]["failure_reason"] == "every attempt failed"
    assert rows[superseded.delivery_id]["status"] == "pending"  # left to the worker that holds it
    assert len(stored) == 4 and all(r["response_body"] == b"\x00\xff" for r in stored)
    assert {r["error"] for r in stored} == {None, "HTTP 503"}


async def test_a_batch_of_successes_is_recorded_in_one_statement_leaving_a_taken_over_delivery_to_its_holder(
    pool: asyncpg.Pool,
) -> None:
    account = uuid.uuid4()
    hook = await endpoint(pool, account)
    made = await due_deliveries(pool, account, hook.id, 3)
    claimed = {c.delivery_id: c for c in await claim(pool, 10)}
    first, second, taken = (claimed[d] for d in made)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE webhook.deliveries SET attempts_made = 2 WHERE id = $1", taken.delivery_id)
    ok = AttemptOutcome(succeeded=True, duration_ms=2.0, status_code=204, response_body=b"")
    sent = [attempts.SentAttempt(c, ok) for c in (first, second, taken)]

    results = await attempts.record_batch(pool, SCHEDULE, sent, LEASE)

    assert results == [("succeeded", None), ("succeeded", None), ("superseded", None)]
    async with pool.acquire() as conn:
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, status, lease_until FROM webhook.deliveries")}
        stored = await conn.fetch("SELECT finished_at, succeeded, status_code FROM webhook.delivery_attempts")
    assert [rows[d]["status"] for d in made] == ["succeeded", "succeeded", "pending"]
    assert rows[first.delivery_id]["lease_until"] is None
    assert rows[taken.delivery_id]["lease_until"] is not None  # still the other worker's
    assert len(stored) == 3 and all(r["finished_at"] and r["succeeded"] and r["status_code"] == 204 for r in stored)
