-- The ingest service's record of what merchants told us: accounts (names learned from auth),
-- calendars, tags, events and subscriptions. `{schema}` is the service's schema (search_path).

CREATE TABLE accounts (
    account_id   uuid PRIMARY KEY,
    account_code text NOT NULL,
    -- NULL until auth's account.created reaches us; the code stands in for it meanwhile.
    name         text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE calendars (
    calendar_id  uuid PRIMARY KEY,
    account_id   uuid NOT NULL,
    code         text NOT NULL,
    name         text NOT NULL,
    description  text NOT NULL DEFAULT '',
    image        text,
    color        text,
    timezone     text NOT NULL DEFAULT 'UTC',
    protected    boolean NOT NULL DEFAULT false,
    refresh_interval text NOT NULL DEFAULT 'PT1H',
    single_subscription_per_subscriber boolean NOT NULL DEFAULT false,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);
-- A code names one live calendar of an account; a deleted calendar's code may be used again.
CREATE UNIQUE INDEX calendars_live_code ON calendars (account_id, lower(code)) WHERE deleted_at IS NULL;

CREATE TABLE tags (
    tag_id       uuid PRIMARY KEY,
    calendar_id  uuid NOT NULL REFERENCES calendars (calendar_id),
    account_id   uuid NOT NULL,
    name         text NOT NULL,
    external_id  text,
    version      integer NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tags_external ON tags (calendar_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX tags_calendar ON tags (calendar_id);

CREATE TABLE subscriptions (
    subscription_id   uuid PRIMARY KEY,
    account_id        uuid NOT NULL,
    calendar_id       uuid NOT NULL REFERENCES calendars (calendar_id),
    subscription_type text NOT NULL CHECK (subscription_type IN ('webcal', 'google')),
    subscriber_id     text,
    active            boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    deactivated_at    timestamptz,
    feed_username     text,
    feed_password_hash text,
    -- Filters, opt-ins, analytics, action type: SubscriptionData's remaining fields, camelCase.
    details           jsonb NOT NULL DEFAULT '{}',
    version           integer NOT NULL DEFAULT 1
);
CREATE INDEX subscriptions_subscriber ON subscriptions (calendar_id, subscriber_id);
-- One active subscription per calendar, subscriber and type (the "existing subscription" rule).
CREATE UNIQUE INDEX subscriptions_active_subscriber
    ON subscriptions (calendar_id, subscriber_id, subscription_type) WHERE active AND subscriber_id IS NOT NULL;

-- Events of three kinds: a calendar's own ('calendar'), a subscription's manual events
-- ('manual', one subscription), and subscription events ('subscription', posted to many).
CREATE TABLE events (
    event_id        uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('calendar', 'manual', 'subscription')),
    account_id      uuid NOT NULL,
    calendar_id     uuid REFERENCES calendars (calendar_id),
    subscription_id uuid REFERENCES subscriptions (subscription_id),
    external_id     text,
    sequence        integer NOT NULL DEFAULT 0,
    -- The event as EventData (camelCase JSON), the form it is published in.
    data            jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX events_calendar_external ON events (calendar_id, external_id)
    WHERE kind = 'calendar' AND external_id IS NOT NULL;
CREATE UNIQUE INDEX events_manual_external ON events (subscription_id, external_id) WHERE kind = 'manual';
CREATE UNIQUE INDEX events_subscription_external ON events (account_id, external_id) WHERE kind = 'subscription';
CREATE INDEX events_calendar_list ON events (calendar_id, created_at) WHERE kind = 'calendar';
