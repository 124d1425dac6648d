"""The provider interface: what the push engine asks of any calendar it pushes into.

One adapter per provider (CalDAV in `adapters/caldav.py`, Google in `adapters/google.py`) implements
`Provider`; the engine (`services/sync/push.py`) never knows which one it talks to. The engine:

1. gives `ensure_calendar` the subscription's target calendar (`remote_calendar_id`, None before the
   first push) and stores the id it answers; a provider creates the calendar when there is none
   (Google: a secondary calendar; CalDAV: the collection made at connect time is kept);
2. calls `update_calendar` when the merchant's calendar (name, description, color) is newer than
   what the pushed calendar shows (optional for a provider);
3. reconciles what the subscription should show (shared/selection.py) against what it has pushed
   (remote id, remote etag, event sequence per event) and calls, per difference,
   `put_event(..., remote_id=None, etag=None)` to create, `put_event(..., remote_id, etag)` to update
   (only when the pushed sequence is older), `delete_event(...)` to remove;
4. records each answer (`PushedEvent`) in the same breath, so a restart or a replayed message
   finds it and pushes nothing twice.

Contract for implementations:
- `put_event` is idempotent by the event's UID (`event.event_id`): creating an event that already
  exists remotely (a crash between the remote write and our record) overwrites it, never duplicates.
- `delete_event` of something already gone succeeds.
- A precondition failure (the user edited the event: etag mismatch) is the provider's to resolve:
  our pushed calendar is a mirror, the provider overwrites and answers the new etag.
- Every failure is one of the typed errors below; anything else is treated as `TransientError`.

How the engine reacts to each error:
- `AuthExpired`: the access token no longer works. The engine calls `refresh(connection)` once,
  stores the new credentials and retries; if `refresh` raises `NeedsConsent` the subscription waits
  for a new consent (Google's re-authorization), nothing more is pushed for it until then.
- `NeedsConsent`: the grant is revoked (`invalid_grant`): as above, without the refresh.
- `Unauthorized`: the credentials are refused for good (CalDAV 401/403 with a stored password):
  the subscription is deactivated with `reason`.
- `CalendarGone`: the user deleted our calendar (404/410 on it): the subscription is deactivated
  (Unsubscribe webhook) and nothing is pushed to it again.
- `RateLimited(retry_after)`: this remote user is over its quota: every subscription of the
  connection waits `retry_after` seconds (or the engine's exponential backoff with jitter);
  other users' pushes go on.
- `TransientError`: 5xx, a timeout, a reset connection: the subscription is retried later with
  exponential backoff and jitter.
- `EventRejected`: the remote refuses this one event for good (400): recorded and skipped, the
  rest of the subscription goes on; a later version of the event is tried again.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from shared.messages import EventData


@dataclass(frozen=True)
class Connection:
    """A subscriber's account at a provider, credentials decrypted (never logged: see `__repr__`)."""

    connection_id: uuid.UUID
    account_id: uuid.UUID
    provider: str  # "caldav" | "google"
    # Who the remote user is: CalDAV "username@host", Google the user's email. Backoff is per remote user.
    remote_user: str
    # CalDAV: {"url", "username", "password", "home_url"}; Google: {"access_token", "refresh_token", "expires_at"}.
    credentials: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class CalendarMeta:
    """The merchant's calendar as the pushed calendar shows it."""

    calendar_id: uuid.UUID
    name: str
    description: str = ""
    color: str | None = None
    timezone: str = "UTC"  # IANA
    version: int = 0  # ingest's version of the calendar: a newer one is shown with update_calendar


@dataclass(frozen=True)
class PushedEvent:
    """Where an event now lives remotely: its id (CalDAV: the resource URL; Google: the event id) and etag."""

    remote_id: str
    etag: str | None


class ProviderError(Exception):
    """Base of every failure a provider reports; `reason` is fit to show a merchant or subscriber."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AuthExpired(ProviderError):
    """The access token was refused; refreshing it may help (Google 401)."""


class NeedsConsent(ProviderError):
    """The grant is revoked or expired for good (Google `invalid_grant`): the user must consent again."""


class Unauthorized(ProviderError):
    """The stored credentials are refused (CalDAV 401/403): the subscription is deactivated."""


class CalendarGone(ProviderError):
    """Our calendar no longer exists remotely (404/410 on it): the subscription is deactivated."""


class RateLimited(ProviderError):
    """The remote user is over quota (Google 403 rateLimitExceeded, 429); wait `retry_after` seconds."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class TransientError(ProviderError):
    """Worth retrying later: 5xx, a timeout, a reset connection."""


class EventRejected(ProviderError):
    """The remote refuses this one event for good (400): skipped until the event changes again."""


class Provider(ABC):
    """One calendar provider. Instances are shared by every subscription; they hold no per-user state."""

    name: str

    @abstractmethod
    async def ensure_calendar(
        self, connection: Connection, calendar: CalendarMeta, remote_calendar_id: str | None
    ) -> str:
        """The id of the calendar to push into, creating it when `remote_calendar_id` is None.

        Raises CalendarGone when `remote_calendar_id` names a calendar that no longer exists."""

    @abstractmethod
    async def put_event(
        self,
        connection: Connection,
        remote_calendar_id: str,
        calendar: CalendarMeta,
        event: EventData,
        remote_id: str | None,
        etag: str | None,
    ) -> PushedEvent:
        """Create (`remote_id` None) or overwrite one event; idempotent by `event.event_id`."""

    @abstractmethod
    async def delete_event(
        self, connection: Connection, remote_calendar_id: str, remote_id: str, etag: str | None
    ) -> None:
        """Remove one event; an event already gone is not an error."""

    async def update_calendar(  # noqa: B027 - optional: providers that can rename a calendar do
        self, connection: Connection, remote_calendar_id: str, calendar: CalendarMeta
    ) -> None:
        """The merchant changed the calendar's name, description or color: show it remotely."""

    async def refresh(self, connection: Connection) -> dict[str, Any]:
        """New credentials after AuthExpired (Google: the refresh-token grant). Providers whose
        credentials do not expire refuse for good."""
        raise Unauthorized(f"{self.name} credentials cannot be refreshed")

    async def release(self, connection: Connection) -> None:  # noqa: B027 - optional hook
        """The connection serves no active subscription any more (Google: revoke the token)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release HTTP sessions at shutdown."""
