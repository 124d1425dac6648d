-- The relay parks a row it cannot publish (too large for the broker, or failed too often) instead of
-- retrying it ahead of every later row: it stays here with its reason for an operator to look at.

ALTER TABLE outbox
    ADD COLUMN attempts    integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error  text,
    ADD COLUMN parked_at   timestamptz,
    ADD COLUMN park_reason text;

-- The relay only ever scans rows that are neither sent nor parked.
DROP INDEX outbox_unsent;
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (parked_at) WHERE parked_at IS NOT NULL;
