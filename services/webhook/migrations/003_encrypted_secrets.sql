-- Signing secrets are encrypted at rest (shared/crypto.py SecretBox, KALENDS_ENCRYPTION_KEYS).
-- SQL cannot encrypt, so the service does it when it starts (services/webhook/secrets.py): it
-- fills the *_encrypted columns from the plaintext ones and empties those, idempotently. Until a
-- row is converted its plaintext still works, so nothing breaks between the migration and the start.
ALTER TABLE endpoints
    ADD COLUMN secret_encrypted text,
    ADD COLUMN previous_secret_encrypted text,
    ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE endpoints ADD CONSTRAINT endpoints_have_a_secret CHECK (secret IS NOT NULL OR secret_encrypted IS NOT NULL);
