-- The console's subscription search and the analytics report read one account's subscriptions, newest
-- first (adapters/reports.py). Without this index each read scanned every account's subscriptions.
-- A deployment with many rows already may prefer to build it first with CREATE INDEX CONCURRENTLY
-- (the migration then finds it: IF NOT EXISTS).
CREATE INDEX IF NOT EXISTS subscriptions_by_account ON subscriptions (account_id, created_at DESC);
