-- feed's copy of auth's API keys takes the same shape as ingest's and mail's (shared/api_keys.py).
-- Keys learnt before this migration have no code until auth announces them again.
ALTER TABLE api_keys ADD COLUMN account_code text;
