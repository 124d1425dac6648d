"""The Google adapter against the Google double over real HTTP: consent, PKCE, tokens, calendars,
events, and each failure Google reports mapped to what the push engine acts on."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.sync.adapters.google import GoogleProvider, GoogleTokens
from services.sync.domain.google_consent import consent_url, new_pkce, redirect_uri
from services.sync.domain.provider import (
    AuthExpired,
    CalendarGone,
    CalendarMeta,
    Connection,
    NeedsConsent,
    RateLimited,
    TransientError,
)
from services.sync.google_settings import GoogleSettings
from shared.messages import EventData
from tests.doubles.google import GoogleDouble

SYNC_URL = "http://127.0.0.1:9/"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
async def google() -> AsyncIterator[GoogleDouble]:
    double = await GoogleDouble().start()
    yield double
    await double.stop()
    assert double.rejections == [], "requests Google would have refused"


@pytest.fixture
async def provider(google: GoogleDouble) -> AsyncIterator[GoogleProvider]:
    settings = GoogleSettings.from_env(google.settings())
    assert settings is not None
    adapter = GoogleProvider(settings, timeout=5)
    yield adapter
    await adapter.close()


async def consented(google: GoogleDouble, provider: GoogleProvider, email: str) -> GoogleTokens:
    pkce = new_pkce()
    url = consent_url(
        provider.settings.auth_url,
        client_id=provider.settings.client_id,
        public_sync_url=SYNC_URL,
        state="s1",
        challenge=pkce.challenge,
    )
    location = await google.consent(url, email)
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["state"] == "s1"
    return await provider.oauth.exchange(params["code"], pkce.verifier, redirect_uri(SYNC_URL))


def connection(email: str, tokens: GoogleTokens) -> Connection:
    return Connection(uuid.uuid4(), uuid.uuid4(), "google", email, tokens.credentials())


def event(title: str = "Kick-off", **fields: Any) -> EventData:
    base: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "calendar_id": uuid.uuid4(),
        "account_id": uuid.uuid4(),
        "sequence": 1,
        "changed_at": NOW,
        "created_at": NOW,
        "title": title,
        "start": "2026-06-04T19:00:00",
        "end": "2026-06-04T21:00:00",
        "timezone": "Europe/Paris",
    }
    return EventData(**{**base, **fields})


META = CalendarMeta(uuid.uuid4(), "Acme Fixtures", "Every match", "#dc2127", "Europe/Paris")


async def test_the_code_exchange_needs_the_right_pkce_verifier_and_works_once(
    google: GoogleDouble, provider: GoogleProvider
) -> None:
    pkce = new_pkce()
    url = consent_url(
        provider.settings.auth_url,
        client_id=google.client_id,
        public_sync_url=SYNC_URL,
        state="x",
        challenge=pkce.challenge,
    )
    code = dict(parse_qsl(urlsplit(await google.consent(url, "ann@gmail.test")).query))["code"]
    with pytest.raises(NeedsConsent, match="Invalid code verifier"):
        await provider.oauth.exchange(code, new_pkce().verifier, redirect_uri(SYNC_URL))
    tokens = await provider.oauth.exchange(code, pkce.verifier, redirect_uri(SYNC_URL))
    assert tokens.refresh_token and await provider.oauth.email(tokens.access_token) == "ann@gmail.test"
    with pytest.raises(NeedsConsent):
        await provider.oauth.exchange(code, pkce.verifier, redirect_uri(SYNC_URL))


async def test_cancel_on_the_consent_page_comes_back_as_access_denied(
    google: GoogleDouble, provider: GoogleProvider
) -> None:
    url = consent_url(
        provider.settings.auth_url, client_id=google.client_id, public_sync_url=SYNC_URL, state="st", challenge="c" * 43
    )
    location = await google.consent(url, "bob@gmail.test", allow=False)
    assert dict(parse_qsl(urlsplit(location).query)) == {"error": "access_denied", "state": "st"}
    assert location.startswith(redirect_uri(SYNC_URL))


async def test_a_calendar_is_created_with_its_colour_and_an_event_imported_twice_exists_once(
    google: GoogleDouble, provider: GoogleProvider
) -> None:
    tokens = await consented(google, provider, "cat@gmail.test")
    who = connection("cat@gmail.test", tokens)
    calendar_id = await provider.ensure_calendar(who, META, None)
    stored = google.calendars[calendar_id]
    assert stored.body["summary"] == "Acme Fixtures" and stored.body["timeZone"] == "Europe/Paris"
    assert stored.list_entry["backgroundColor"] == "#dc2127"
    renamed_calendar = CalendarMeta(META.calendar_id, "Acme Cup", "Cup ties only", "navy", "Europe/Paris", 2)
    await provider.update_calendar(who, calendar_id, renamed_calendar)
    assert (stored.body["summary"], stored.body["description"]) == ("Acme Cup", "Cup ties only")
    assert stored.list_entry["backgroundColor"] == "#000080"
    kickoff = event(notify_before=30, location="Stade", color="green")
    first = await provider.put_event(who, calendar_id, META, kickoff, None, None)
    again = await provider.put_event(who, calendar_id, META, kickoff, None, None)  # a crash before our record
    assert first.remote_id == again.remote_id and len(stored.live_events()) == 1
    renamed = kickoff.model_copy(update={"title": "Kick-off, moved", "sequence": 2})
    await provider.put_event(who, calendar_id, META, renamed, first.remote_id, first.etag)
    [pushed] = stored.live_events()
    assert pushed["summary"] == "Kick-off, moved" and pushed["iCalUID"] == str(kickoff.event_id)
    assert pushed["reminders"]["overrides"] == [{"method": "popup", "minutes": 30}] and pushed["colorId"] == "10"
    await provider.delete_event(who, calendar_id, first.remote_id, None)
    await provider.delete_event(who, calendar_id, first.remote_id, None)  # already gone: fine
    assert stored.live_events() == []


async def test_google_failures_become_the_errors_the_engine_acts_on(
    google: GoogleDouble, provider: GoogleProvider
) -> None:
    tokens = await consented(google, provider, "dan@gmail.test")
    who = connection("dan@gmail.test", tokens)
    calendar_id = await provider.ensure_calendar(who, META, None)
    google.fail_next("dan@gmail.test", 403, "rateLimitExceeded")
    with pytest.raises(RateLimited):
        await provider.put_event(who, calendar_id, META, event(), None, None)
    google.fail_next("dan@gmail.test", 429)
    with pytest.raises(RateLimited):
        await provider.put_event(who, calendar_id, META, event(), None, None)
    google.fail_next("dan@gmail.test", 503, "backendError")
    with pytest.raises(TransientError):
        await provider.put_event(who, calendar_id, META, event(), None, None)
    google.expire_tokens("dan@gmail.test")
    with pytest.raises(AuthExpired):
        await provider.put_event(who, calendar_id, META, event(), None, None)
    fresh = connection("dan@gmail.test", GoogleTokens(**{**tokens.__dict__, **await _refreshed(provider, who)}))
    pushed = await provider.put_event(fresh, calendar_id, META, event(), None, None)
    google.delete_calendar(calendar_id)
    with pytest.raises(CalendarGone):
        await provider.put_event(fresh, calendar_id, META, event(), None, None)
    with pytest.raises(CalendarGone):
        await provider.delete_event(fresh, calendar_id, pushed.remote_id, None)
    google.revoke_user("dan@gmail.test")
    with pytest.raises(NeedsConsent, match="revoked"):
        await provider.refresh(fresh)


async def test_a_deleted_calendar_answered_with_410_is_gone_too(google: GoogleDouble, provider: GoogleProvider) -> None:
    google.gone_status = 410
    who = connection("eve@gmail.test", await consented(google, provider, "eve@gmail.test"))
    calendar_id = await provider.ensure_calendar(who, META, None)
    google.delete_calendar(calendar_id)
    with pytest.raises(CalendarGone):
        await provider.put_event(who, calendar_id, META, event(), None, None)


async def test_release_revokes_the_grant(google: GoogleDouble, provider: GoogleProvider) -> None:
    tokens = await consented(google, provider, "fay@gmail.test")
    await provider.release(connection("fay@gmail.test", tokens))
    assert google.revoked == ["fay@gmail.test"] and google.live_grants("fay@gmail.test") == []


async def _refreshed(provider: GoogleProvider, who: Connection) -> dict[str, Any]:
    credentials = await provider.refresh(who)
    return {"access_token": credentials["access_token"], "expires_at": credentials["expires_at"]}
