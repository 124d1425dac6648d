-- Private signing keys are encrypted at rest (shared/crypto.py SecretBox, KALENDS_ENCRYPTION_KEYS).
-- SQL cannot encrypt, so the service does it when it starts (services/auth/keys.py seal_signing_keys):
-- it fills private_jwk_encrypted from private_jwk and empties that, idempotently. The public half is
-- kept apart, in the clear, so the JWKS is served without decrypting anything.
ALTER TABLE signing_keys
    ADD COLUMN public_jwk jsonb,
    ADD COLUMN private_jwk_encrypted text,
    ALTER COLUMN private_jwk DROP NOT NULL;

UPDATE signing_keys SET public_jwk = jsonb_strip_nulls(jsonb_build_object(
    'kty', private_jwk -> 'kty', 'kid', private_jwk -> 'kid', 'use', private_jwk -> 'use',
    'alg', private_jwk -> 'alg', 'n', private_jwk -> 'n', 'e', private_jwk -> 'e'
)) WHERE private_jwk IS NOT NULL;

ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_have_a_private_key
    CHECK (private_jwk IS NOT NULL OR private_jwk_encrypted IS NOT NULL);
