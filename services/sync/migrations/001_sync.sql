-- The sync service: provider connections, a mirror of what subscriptions see, and what was pushed.

-- A subscriber's account at a provider. Credentials are a Fernet token of a JSON object
-- (KALENDS_ENCRYPTION_KEYS): a CalDAV password or OAuth tokens are never stored in the clear.
CREATE TABLE connections (
    connection_id       uuid PRIMARY KEY,
    account_id          uuid NOT NULL,
    provider            text NOT NULL CHECK (provider IN ('caldav', 'google')),
    -- CalDAV "username@host", Google the user's email: rate limits and backoff are per remote user.
    remote_user         text NOT NULL,
    credentials         text NOT NULL,
    -- The calendar made when connecting (CalDAV: the collection), used by the first subscription.
    remote_calendar_id  text,
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'needs_consent', 'unauthorized', 'released')),
    reason              text,
    -- Backoff of this remote user after a rate limit: nothing is pushed to it before then.
    blocked_until       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_remote_user ON connections (provider, remote_user);

-- The catalog as ingest announced it: what rendering and selection need.
CREATE TABLE calendars (
    calendar_id   uuid PRIMARY KEY,
    account_id    uuid NOT NULL,
    name          text NOT NULL,
    description   text NOT NULL DEFAULT '',
    color         text,
    timezone      text NOT NULL DEFAULT 'UTC',
    version       integer NOT NULL,
    deleted       boolean NOT NULL DEFAULT false
);

CREATE TABLE events (
    event_id          uuid PRIMARY KEY,
    calendar_id       uuid NOT NULL,
    external_id       text,
    sequence          integer NOT NULL,
    created_at        timestamptz NOT NULL,
    tag_ids           uuid[] NOT NULL DEFAULT '{}',
    time_zone_tag     text,
    deleted           boolean NOT NULL DEFAULT false,
    -- Empty for a calendar event; else the subscriptions a manual or subscription event belongs to.
    subscription_ids  uuid[] NOT NULL DEFAULT '{}',
    origin            text NOT NULL DEFAULT 'calendar' CHECK (origin IN ('calendar', 'manual', 'subscription_event')),
    -- The event as shared.messages.EventData: each provider renders what it needs from it.
    data              jsonb NOT NULL
);
CREATE INDEX events_shared ON events (calendar_id) WHERE cardinality(subscription_ids) = 0;
CREATE INDEX events_private ON events USING gin (subscription_ids) WHERE cardinality(subscription_ids) > 0;

-- Subscriptions as ingest announced them, with their filter (shared/selection.py's EventFilter).
CREATE TABLE subscriptions (
    subscription_id     uuid PRIMARY KEY,
    calendar_id         uuid NOT NULL,
    account_id          uuid NOT NULL,
    subscription_type   text NOT NULL,
    active              boolean NOT NULL,
    created_at          timestamptz NOT NULL,
    deactivated_at      timestamptz,
    tag_ids             uuid[] NOT NULL DEFAULT '{}',
    time_zone_tag       text,
    include_ids         uuid[] NOT NULL DEFAULT '{}',
    include_external    text[] NOT NULL DEFAULT '{}',
    exclude_ids         uuid[] NOT NULL DEFAULT '{}',
    exclude_external    text[] NOT NULL DEFAULT '{}',
    connection_id       uuid,
    version             integer NOT NULL
);
CREATE INDEX subscriptions_by_calendar ON subscriptions (calendar_id) WHERE connection_id IS NOT NULL;

-- Where a subscription is pushed, and whether it still is (sync's own state, not ingest's).
CREATE TABLE targets (
    subscription_id     uuid PRIMARY KEY,
    connection_id       uuid NOT NULL REFERENCES connections (connection_id),
    remote_calendar_id  text,
    state               text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'needs_consent', 'stopped')),
    reason              text,
    -- Consecutive failed reconciliations (transient errors): the exponent of the backoff.
    failures            integer NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX targets_by_connection ON targets (connection_id);

-- What is in the remote calendar, per subscription and event: the reconciliation's other side.
CREATE TABLE pushed (
    subscription_id  uuid NOT NULL,
    event_id         uuid NOT NULL,
    remote_id        text NOT NULL,
    etag             text,
    sequence         integer NOT NULL,
    -- Set when the remote refused this version for good (EventRejected): not retried until it changes.
    rejected         text,
    pushed_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription_id, event_id)
);

-- Subscriptions with work to do: marked in the projection's transaction, cleared by the engine once
-- reconciled. `marks` grows with each mark, so a change during a reconciliation keeps the row.
CREATE TABLE push_queue (
    subscription_id  uuid PRIMARY KEY,
    due_at           timestamptz NOT NULL DEFAULT now(),
    marks            bigint NOT NULL DEFAULT 1,
    claimed_until    timestamptz
);
CREATE INDEX push_queue_due ON push_queue (due_at);
