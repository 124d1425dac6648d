-- CalDAV subscriptions (pushed by the sync service): a third subscription type.
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_subscription_type_check;
ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_subscription_type_check
    CHECK (subscription_type IN ('webcal', 'google', 'caldav'));
