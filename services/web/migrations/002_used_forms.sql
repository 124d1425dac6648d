-- Forms that make a secret (a new API key, OAuth client or webhook endpoint, a rotated webhook secret)
-- carry a one-time id. The page that shows the secret answers the POST; reloading it posts the same
-- id again, which is sent back to the list instead of making a second secret. Rows go with their session.
CREATE TABLE used_forms (
    session_id_hash  bytea NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    form_id          text NOT NULL,
    used_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id_hash, form_id)
);
