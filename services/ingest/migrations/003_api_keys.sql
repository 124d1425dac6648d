-- API keys (seed 001's x-api-key), as announced by auth: only a hash of each key. The Unipile
-- route (X-API-KEY) authenticates with them.
CREATE TABLE api_keys (
    key_hash     text PRIMARY KEY,
    account_id   uuid NOT NULL,
    account_code text NOT NULL,
    revoked      boolean NOT NULL DEFAULT false
);
