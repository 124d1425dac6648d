-- The dispatcher claims due deliveries per endpoint, oldest first, up to the endpoint's free slots:
-- a skip scan over this index finds the endpoints with pending deliveries, then each endpoint's
-- oldest ones, without reading a long backlog.
CREATE INDEX deliveries_pending_by_endpoint ON deliveries (endpoint_id, next_attempt_at, created_at, id)
    WHERE status = 'pending';
