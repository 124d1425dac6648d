-- A delivery is updated twice after its insert (the claim's lease, the outcome) and its attempt row
-- once (the outcome). Pages filled to the brim leave those updates no room beside the row, so each
-- writes its new version elsewhere with a new entry in every index; with room on the page, an update
-- that changes no indexed column (the lease, an attempt's outcome) is a heap-only tuple: no index
-- entries, and the old version is pruned in place. Applies to pages written from now on.
ALTER TABLE deliveries SET (fillfactor = 70);
ALTER TABLE delivery_attempts SET (fillfactor = 70);

-- Nothing reads deliveries by due time alone since claims go per endpoint (004's index, which has
-- the same rows): one index fewer to write for every delivery made or rescheduled.
DROP INDEX IF EXISTS deliveries_due;
