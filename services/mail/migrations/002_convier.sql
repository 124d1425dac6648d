-- Convier (seed 000): API keys as announced by auth (hashes only), and each request by its UID so
-- posting the same UID again is an update (SEQUENCE up, removed attendees cancelled).
CREATE TABLE api_keys (
    key_hash     text PRIMARY KEY,
    account_id   uuid NOT NULL,
    account_code text NOT NULL,
    revoked      boolean NOT NULL DEFAULT false
);

CREATE TABLE convier_requests (
    account_id  uuid NOT NULL,
    uid         text NOT NULL,
    component   text NOT NULL CHECK (component IN ('event', 'todo', 'journal')),
    sequence    integer NOT NULL,
    attendees   text[] NOT NULL DEFAULT '{}',   -- lower-cased addresses invited by the last request
    calendar    text NOT NULL,                  -- the iCalendar generated last
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, uid)
);
