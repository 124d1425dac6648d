-- A protected calendar's feed password, encrypted with KALENDS_ENCRYPTION_KEYS (Fernet), so that
-- re-subscribing answers the same webcal URL; feed_password_hash stays what the feed checks.
ALTER TABLE subscriptions ADD COLUMN feed_password_encrypted text;
