-- The feed's read model: what ingest announced, each event already rendered as a VEVENT block.

CREATE TABLE calendars (
    calendar_id      uuid PRIMARY KEY,
    account_id       uuid NOT NULL,
    account_code     text NOT NULL,
    code             text NOT NULL,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    image            text,
    color            text,
    timezone         text NOT NULL DEFAULT 'UTC',
    protected        boolean NOT NULL DEFAULT false,
    refresh_interval text NOT NULL DEFAULT 'PT1H',
    version          integer NOT NULL,
    changed_at       timestamptz NOT NULL,
    deleted          boolean NOT NULL DEFAULT false
);
CREATE INDEX calendars_by_code ON calendars (lower(account_code), lower(code)) WHERE NOT deleted;

-- Bumped in the same transaction as any change to what a calendar's shared feed sections contain
-- (its events, its header). Kept apart from `calendars` so an event may arrive before its calendar.
CREATE TABLE calendar_versions (
    calendar_id  uuid PRIMARY KEY,
    version      bigint NOT NULL DEFAULT 1,
    changed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tags (
    tag_id       uuid PRIMARY KEY,
    calendar_id  uuid NOT NULL,
    name         text NOT NULL,
    external_id  text,
    version      integer NOT NULL,
    deleted      boolean NOT NULL DEFAULT false
);

CREATE TABLE events (
    event_id          uuid PRIMARY KEY,
    calendar_id       uuid NOT NULL,
    external_id       text,
    sequence          integer NOT NULL,
    changed_at        timestamptz NOT NULL,
    created_at        timestamptz NOT NULL,
    start_utc         timestamptz NOT NULL,
    tag_ids           uuid[] NOT NULL DEFAULT '{}',
    time_zone_tag     text,
    tzids             text[] NOT NULL DEFAULT '{}',
    block             bytea NOT NULL,
    deleted           boolean NOT NULL DEFAULT false,
    -- Empty for a calendar event; else the subscriptions a manual or subscription event belongs to.
    subscription_ids  uuid[] NOT NULL DEFAULT '{}',
    origin            text NOT NULL DEFAULT 'calendar' CHECK (origin IN ('calendar', 'manual', 'subscription_event'))
);
CREATE INDEX events_shared ON events (calendar_id, start_utc, event_id) WHERE cardinality(subscription_ids) = 0;
CREATE INDEX events_private ON events USING gin (subscription_ids) WHERE cardinality(subscription_ids) > 0;

CREATE TABLE subscriptions (
    subscription_id     uuid PRIMARY KEY,
    calendar_id         uuid NOT NULL,
    account_id          uuid NOT NULL,
    active              boolean NOT NULL,
    created_at          timestamptz NOT NULL,
    deactivated_at      timestamptz,
    tag_ids             uuid[] NOT NULL DEFAULT '{}',
    time_zone_tag       text,
    include_ids         uuid[] NOT NULL DEFAULT '{}',
    include_external    text[] NOT NULL DEFAULT '{}',
    exclude_ids         uuid[] NOT NULL DEFAULT '{}',
    exclude_external    text[] NOT NULL DEFAULT '{}',
    signature           text NOT NULL,
    feed_username       text,
    feed_password_hash  text,
    version             integer NOT NULL,
    -- Bumped with every change to this subscription's feed that is its own (filter, private events).
    feed_version        bigint NOT NULL DEFAULT 1,
    feed_changed_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_by_calendar ON subscriptions (calendar_id);

-- API keys of POST /v1/ics (seed 001), as announced by auth: only a hash of each key.
CREATE TABLE api_keys (
    key_hash     text PRIMARY KEY,
    account_id   uuid NOT NULL,
    revoked      boolean NOT NULL DEFAULT false
);
