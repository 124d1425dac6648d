"""Delivery attempts: claim due ones in batches, send each signed, record the outcomes in batches
and decide what comes next.

An attempt never ends unrecorded: an outcome that cannot be stored in full is stored without the
response, and one that cannot be stored at all ends the delivery as failed, with the reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from services.webhook.adapters import batches
from services.webhook.adapters import repository as repo
from services.webhook.adapters.sender import AttemptOutcome, WebhookSender
from services.webhook.domain.schedule import next_attempt
from services.webhook.domain.signing import signature_header
from shared.crypto import SecretBox
from shared.logging import get_logger

log = get_logger(__name__)


_TRANSIENT = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)


async def _with_retries(lease: float, label: str, work: Any) -> Any:
    """Run `work()` until it succeeds or the lease runs out (the database may blink)."""
    deadline = time.monotonic() + lease
    delay = 0.1
    while True:
        try:
            return await work()
        except _TRANSIENT as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("webhook.database_unavailable", step=label, error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def signed_headers(claimed: repo.ClaimedAttempt, timestamp: int) -> dict[str, str]:
    message_id = str(claimed.event_id)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(claimed.signing_secrets, message_id, timestamp, claimed.body),
        "kalends-delivery-id": str(claimed.delivery_id),
        "kalends-attempt": str(claimed.number),
    }


async def claim_batch(
    pool: asyncpg.Pool,
    box: SecretBox | batches.OpenSecrets,
    *,
    limit: int,
    endpoint_limit: int,
    active: Mapping[uuid.UUID, int],
    lease: float,
) -> list[repo.ClaimedAttempt]:
    """Claim up to `limit` due attempts in one statement (batches.claim_due): each is counted on its
    delivery and leased before anything is sent (its row is written with its outcome)."""
    async with pool.acquire() as conn:
        return await batches.claim_due(
            conn, box, limit=limit, endpoint_limit=endpoint_limit, active=active, lease_seconds=lease
        )


@dataclass(frozen=True)
class SentAttempt:
    claimed: repo.ClaimedAttempt
    outcome: AttemptOutcome


async def send_attempt(sender: WebhookSender, claimed: repo.ClaimedAttempt) -> SentAttempt:
    """POST one claimed attempt, signed now."""
    outcome = await sender.send(claimed.url, signed_headers(claimed, int(time.time())), claimed.body)
    return SentAttempt(claimed, outcome)


async def record_batch(
    pool: asyncpg.Pool, schedule: Sequence[float], sent: Sequence[SentAttempt], lease: float
) -> list[tuple[str, int | None]]:
    """Record the outcomes and decide what comes next for each delivery: (status, delay step) in
    the order given. One transaction for the batch; if the database refuses it (one outcome it
    cannot store, say), each is recorded alone, so that a bad one is stored without its response
    and none ends unrecorded."""
    if not sent:
        return []
    try:
        result: list[tuple[str, int | None]] = await _with_retries(
            lease, "record", lambda: _record_many(pool, schedule, sent)
        )
        return result
    except _TRANSIENT:
        raise  # the database stayed away for the whole lease: nothing can be recorded now
    except Exception as exc:
        log.warning("webhook.batch_record_failed", attempts=len(sent), error=repr(exc)[:500])
    return [await _record_outcome(pool, schedule, s.claimed, s.outcome, lease) for s in sent]


async def _record_many(
    pool: asyncpg.Pool, schedule: Sequence[float], sent: Sequence[SentAttempt]
) -> list[tuple[str, int | None]]:
    """A batch in one statement when every attempt succeeded (batches.finish_and_settle_successes);
    with failures among them, one transaction that also locks the failed ones' deliveries first (in
    id order, as a claim does) and schedules their next attempts."""
    finished = [
        batches.FinishedAttempt(
            attempt_id=s.claimed.attempt_id,
            delivery_id=s.claimed.delivery_id,
            number=s.claimed.number,
            manual=s.claimed.manual,
            url=s.claimed.url,
            started_at=s.claimed.started_at,
            duration_ms=s.outcome.duration_ms,
            status_code=s.outcome.status_code,
            error=s.outcome.error,
            response_body=s.outcome.response_body,
            succeeded=s.outcome.succeeded,
        )
        for s in sent
    ]
    failed = [s for s in sent if not s.outcome.succeeded]
    async with pool.acquire() as conn:
        if not failed:
            stored = await batches.finish_and_settle_successes(conn, finished)
            return [_success(stored, s) for s in sent]
        async with conn.transaction():
            current = await batches.lock_deliveries(conn, [s.claimed.delivery_id for s in failed])
            stored = await batches.finish_and_settle_successes(conn, finished)
            results: list[tuple[str, int | None]] = []
            settlements: list[batches.Settlement] = []
            for s in sent:
                claimed = s.claimed
                if s.outcome.succeeded:
                    results.append(_success(stored, s))
                    continue
                row = current.get(claimed.delivery_id)
                finished_at = stored.get(claimed.attempt_id, (None, False))[0]
                if (
                    row is None
                    or finished_at is None
                    or row["status"] != "pending"
                    or row["attempts_made"] != claimed.number
                ):
                    results.append(("superseded", None))  # another worker took over after our lease ran out
                    continue
                following = (
                    None
                    if claimed.manual
                    else next_attempt(schedule, claimed.first_attempt_at, claimed.number, finished_at)
                )
                if following is None:
                    settlements.append(batches.Settlement(claimed.delivery_id, "failed"))
                    results.append(("failed", None))
                else:
                    settlements.append(batches.Settlement(claimed.delivery_id, "pending", following.due_at))
                    results.append(("pending", following.step))
            await batches.settle_deliveries(conn, settlements)
    return results


def _success(stored: dict[uuid.UUID, tuple[datetime | None, bool]], sent: SentAttempt) -> tuple[str, int | None]:
    """A successful attempt's result: its delivery ended as succeeded, or another worker holds it."""
    won = stored.get(sent.claimed.attempt_id, (None, False))[1]
    return ("succeeded", None) if won else ("superseded", None)


async def _record(
    pool: asyncpg.Pool, schedule: Sequence[float], claimed: repo.ClaimedAttempt, outcome: AttemptOutcome
) -> tuple[str, int | None]:
    """Record the outcome and decide what comes next, in one transaction: (delivery status, delay step)."""
    delivery_id = claimed.delivery_id
    async with pool.acquire() as conn, conn.transaction():
        # The delivery before its attempt, as a claim locks them (no two transactions wait in a circle).
        current = await repo.lock_delivery(conn, delivery_id)
        if current is None:
            return ("superseded", None)  # the delivery is gone (its endpoint deleted): nothing to record
        finished_at = await repo.finish_attempt(
            conn,
            claimed,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.response_body,
            succeeded=outcome.succeeded,
        )
        if current["status"] != "pending" or current["attempts_made"] != claimed.number:
            return ("superseded", None)  # another worker took over after our lease ran out
        if outcome.succeeded:
            await repo.complete_delivery(conn, delivery_id, "succeeded")
            return ("succeeded", None)
        following = (
            None if claimed.manual else next_attempt(schedule, claimed.first_attempt_at, claimed.number, finished_at)
        )
        if following is None:
            await repo.complete_delivery(conn, delivery_id, "failed")
            return ("failed", None)
        await repo.schedule_delivery(conn, delivery_id, following.due_at)
        return ("pending", following.step)


async def _record_outcome(
    pool: asyncpg.Pool,
    schedule: Sequence[float],
    claimed: repo.ClaimedAttempt,
    outcome: AttemptOutcome,
    lease: float,
) -> tuple[str, int | None]:
    """Record an attempt so that it never ends unrecorded (which would send it again, unseen):
    in full; else without the response (saying why); else the delivery ends as failed, with the reason."""
    try:
        result: tuple[str, int | None] = await _with_retries(
            lease, "record", lambda: _record(pool, schedule, claimed, outcome)
        )
        return result
    except _TRANSIENT:
        raise  # the database stayed away for the whole lease: nothing can be recorded now
    except Exception as exc:
        log.exception("webhook.record_failed", delivery_id=str(claimed.delivery_id), attempt=claimed.number)
        problem = f"the attempt's outcome could not be stored in full ({type(exc).__name__})"
    bare = replace(outcome, response_body=None, error="; ".join(filter(None, [outcome.error, problem])))
    try:
        result = await _with_retries(lease, "record", lambda: _record(pool, schedule, claimed, bare))
        return result
    except _TRANSIENT:
        raise
    except Exception:
        log.exception("webhook.record_failed_again", delivery_id=str(claimed.delivery_id))

    async def abandon() -> None:
        async with pool.acquire() as conn:
            await repo.abandon_delivery(conn, claimed.delivery_id, f"attempt {claimed.number}: {problem}")

    await _with_retries(lease, "abandon", abandon)
    return ("failed", None)
