-- The auth service's tables: accounts (the tenants), their OAuth clients and API keys, the
-- signing keys of access tokens, refresh-token families, revoked access tokens, and the
-- failed-authentication counters shared by every auth process.

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9_-]{1,63}$'),
    name        text NOT NULL,
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    client_id    text PRIMARY KEY,
    account_id   uuid NOT NULL REFERENCES accounts (id),
    -- SHA-256 of the secret; the secret itself is shown once, when the client is created.
    secret_hash  bytea NOT NULL,
    grant_types  text[] NOT NULL DEFAULT ARRAY['client_credentials', 'refresh_token'],
    disabled     boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_account ON clients (account_id);

CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES accounts (id),
    key_hash    text NOT NULL UNIQUE,  -- hex SHA-256 of the key
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    private_jwk  jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Set when a newer key takes over signing.
    retired_at   timestamptz,
    -- After this the key is no longer published: every token it signed has expired.
    expires_at   timestamptz
);

-- A family is every refresh token (and access token) descending from one client-credentials grant.
CREATE TABLE token_families (
    id              uuid PRIMARY KEY,
    client_id       text NOT NULL REFERENCES clients (client_id),
    account_id      uuid NOT NULL REFERENCES accounts (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text
);

CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,  -- SHA-256 of the token
    family_id   uuid NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

CREATE TABLE revoked_access_tokens (
    jti         uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);

-- Failed client authentications per bucket (`client:<id>` or `addr:<ip>`) in a fixed window.
CREATE TABLE auth_failures (
    bucket        text PRIMARY KEY,
    window_start  timestamptz NOT NULL,
    failures      integer NOT NULL
);
