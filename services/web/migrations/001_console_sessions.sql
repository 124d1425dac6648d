-- The web service's own state: console sessions (nothing else; every page reads the other services'
-- public APIs). The cookie carries a random id; only its SHA-256 is stored. The console user's
-- access and refresh tokens, which the web must use again, are encrypted (KALENDS_ENCRYPTION_KEYS).

CREATE TABLE sessions (
    id_hash            bytea PRIMARY KEY,
    user_id            uuid NOT NULL,
    email              text NOT NULL,
    account_code       text NOT NULL,
    access_token       text NOT NULL,
    access_expires_at  timestamptz NOT NULL,
    refresh_token      text NOT NULL,
    csrf_token         text NOT NULL,
    notice             text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    expires_at         timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
