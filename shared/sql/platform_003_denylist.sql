-- The revocation denylist every service schema keeps (shared/denylist.py): revoked access tokens,
-- revoked token families, disabled clients and disabled accounts, as auth announced them.
-- `{schema}` is replaced by the service's schema name.

CREATE TABLE denylist (
    kind        text NOT NULL CHECK (kind IN ('token', 'family', 'client', 'account')),
    subject     text NOT NULL,           -- jti, family id, client id or account id
    denied      boolean NOT NULL,        -- false: re-enabled (kept so an older `disabled` loses)
    changed_at  timestamptz NOT NULL,    -- when auth made the change: orders out-of-order messages
    expires_at  timestamptz,             -- after this the entry cannot matter; NULL: until changed
    written_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kind, subject)
);
-- API processes poll for rows written since their last look.
CREATE INDEX denylist_written ON denylist (written_at);
CREATE INDEX denylist_expiry ON denylist (expires_at) WHERE expires_at IS NOT NULL;
