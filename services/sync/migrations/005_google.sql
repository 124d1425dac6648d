-- Google consents: one row per consent URL handed out. The `nonce` is the one the signed `state`
-- names; `used_at` makes it single-use (a replayed state finds it used). The PKCE verifier is a
-- Fernet token (KALENDS_ENCRYPTION_KEYS). A new subscription travels here from ingest (`subscription`,
-- SubscriptionData as JSON) because ingest announces it only once the user consented.
CREATE TABLE google_consents (
    nonce            text PRIMARY KEY,
    subscription_id  uuid NOT NULL,
    account_id       uuid NOT NULL,
    subscriber_id    text,
    redirect_to      text NOT NULL,
    verifier         text NOT NULL,
    subscription     jsonb,
    is_new           boolean NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);
CREATE INDEX google_consents_subscription ON google_consents (subscription_id);

-- One Google account of one merchant's subscribers is one connection (the engine backs off per
-- connection); a second consent of the same user refreshes its tokens instead of adding a row.
CREATE UNIQUE INDEX connections_google_user ON connections (account_id, remote_user) WHERE provider = 'google';
