"""One delivery attempt: claim it, send it signed, record its outcome, schedule the next; and the sweeper's query.

An attempt never ends unrecorded: an outcome that cannot be stored in full is stored without the
response, and one that cannot be stored at all ends the delivery as failed, with the reason.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from services.webhook.adapters import repository as repo
from services.webhook.adapters.sender import AttemptOutcome, WebhookSender
from services.webhook.domain.schedule import next_attempt
from services.webhook.domain.signing import signature_header
from services.webhook.messaging.timers import TimerPublisher, due_envelope
from shared import outbox
from shared.crypto import SecretBox
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class AttemptReport:
    delivery_id: uuid.UUID
    number: int
    outcome: AttemptOutcome
    status: str  # the delivery's status afterwards


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


async def attempt_delivery(
    pool: asyncpg.Pool,
    sender: WebhookSender,
    timers: TimerPublisher | None,
    schedule: Sequence[float],
    delivery_id: uuid.UUID,
    attempts_made: int,
    *,
    lease: float,
    box: SecretBox,
) -> AttemptReport | None:
    """Claim, send, record and schedule one attempt; None when there is nothing to do (not due,
    already done, claimed by a live worker)."""

    async def claim() -> repo.ClaimedAttempt | None:
        async with pool.acquire() as conn, conn.transaction():
            return await repo.claim_attempt(conn, box, delivery_id, attempts_made, lease)

    claimed: repo.ClaimedAttempt | None = await _with_retries(lease, "claim", claim)
    if claimed is None:
        return None
    outcome = await sender.send(claimed.url, signed_headers(claimed, int(time.time())), claimed.body)

    status, step = await _record_outcome(pool, schedule, claimed, outcome, lease)
    log.info(
        "webhook.attempt",
        delivery_id=str(delivery_id),
        event_type=claimed.event_type,
        attempt=claimed.number,
        status_code=outcome.status_code,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        delivery_status=status,
    )
    if step is not None and timers is not None:
        try:
            await timers.start(delivery_id, claimed.number, step)
        except Exception as exc:  # the sweeper sends it when it falls due
            log.warning("webhook.timer_failed", delivery_id=str(delivery_id), error=repr(exc))
    return AttemptReport(delivery_id, claimed.number, outcome, status)


async def _record(
    pool: asyncpg.Pool, schedule: Sequence[float], claimed: repo.ClaimedAttempt, outcome: AttemptOutcome
) -> tuple[str, int | None]:
    """Record the outcome and decide what comes next, in one transaction: (delivery status, delay step)."""
    delivery_id = claimed.delivery_id
    async with pool.acquire() as conn, conn.transaction():
        finished_at = await repo.finish_attempt(
            conn,
            claimed.attempt_id,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.response_body,
            succeeded=outcome.succeeded,
        )
        current = await repo.lock_delivery(conn, delivery_id)
        if current is None or current["status"] != "pending" or current["attempts_made"] != claimed.number:
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


async def sweep_overdue(pool: asyncpg.Pool, *, grace: float, requeue_after: float) -> int:
    """Re-enqueue every delivery that is overdue and held by nobody (a lost timer, a crashed
    worker, a parked message); returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        overdue = await repo.overdue_deliveries(conn, grace=grace, requeue_after=requeue_after)
        await outbox.enqueue(conn, repo.SCHEMA, [due_envelope(d, n) for d, n in overdue])
    return len(overdue)
