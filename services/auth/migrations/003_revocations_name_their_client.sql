-- A revoked access token remembers whose it was, so `republish-denylist` can announce it again.
ALTER TABLE revoked_access_tokens ADD COLUMN client_id text, ADD COLUMN account_id uuid;
