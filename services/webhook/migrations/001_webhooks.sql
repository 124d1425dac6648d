-- Webhook endpoints, the events sent to them, one delivery per (event, endpoint), and every attempt.
-- PostgreSQL holds the truth of what is due; RabbitMQ only times it.

CREATE TABLE endpoints (
    id                          uuid PRIMARY KEY,
    account_id                  uuid NOT NULL,
    url                         text NOT NULL,
    description                 text NOT NULL DEFAULT '',
    event_types                 text[] NOT NULL,
    enabled                     boolean NOT NULL DEFAULT true,
    secret                      text NOT NULL,
    -- During a rotation's grace period the previous secret signs too (several v1 signatures).
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX endpoints_account ON endpoints (account_id, created_at);

CREATE TABLE events (
    id                 uuid PRIMARY KEY,         -- the payload's eventId and the webhook-id header
    account_id         uuid NOT NULL,
    event_type         text NOT NULL,            -- Subscribe, Unsubscribe or Test
    source_message_id  uuid,                     -- the broker message it came from
    subscription_id    uuid,
    body               bytea NOT NULL,           -- the exact JSON sent and signed on every attempt
    created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id                uuid PRIMARY KEY,
    event_id          uuid NOT NULL REFERENCES events (id),
    endpoint_id       uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts_made     integer NOT NULL DEFAULT 0,
    -- The schedule's anchor: the first attempt's start.
    first_attempt_at  timestamptz,
    next_attempt_at   timestamptz,
    -- A claimed attempt in flight; another worker may take over once it has passed.
    lease_until       timestamptz,
    -- The pending attempt was asked for by an operator: exactly one attempt, no schedule.
    manual            boolean NOT NULL DEFAULT false,
    swept_at          timestamptz,
    failure_reason    text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    UNIQUE (event_id, endpoint_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, created_at DESC, id DESC);

CREATE TABLE delivery_attempts (
    id             uuid PRIMARY KEY,
    delivery_id    uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    number         integer NOT NULL,
    trigger        text NOT NULL CHECK (trigger IN ('scheduled', 'manual')),
    url            text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    duration_ms    double precision,
    status_code    integer,
    error          text,
    response_body  text,
    succeeded      boolean,
    UNIQUE (delivery_id, number)
);
