-- Console users: people who sign in to the merchant console (services/web) for one account.
-- Passwords are argon2id hashes (argon2-cffi's encoded form); a user without one has not yet used
-- the one-time link `create-user` printed. Emails are unique across accounts: login is by email.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    account_id     uuid NOT NULL REFERENCES accounts (id),
    email          text NOT NULL,
    password_hash  text,
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now(),
    password_set_at timestamptz
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_account ON users (account_id);

-- One-time links to set a password: SHA-256 of the token, single use, expiring.
CREATE TABLE password_tokens (
    token_hash  bytea PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_tokens_user ON password_tokens (user_id);

-- A login: the refresh tokens that keep a console session's access token fresh descend from it,
-- and its id is the `sid` of every access token it issued, so revoking it (logout, a reused refresh
-- token) is announced as a token family and every service refuses those tokens within seconds.
CREATE TABLE user_sessions (
    id              uuid PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz,
    revoked_reason  text
);
CREATE INDEX user_sessions_user ON user_sessions (user_id);

CREATE TABLE user_refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES user_sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX user_refresh_tokens_session ON user_refresh_tokens (session_id);
