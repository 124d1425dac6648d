-- What a calendar's public page (the web service) asks visitors beyond their choice of events:
-- {"email": "off"|"optional"|"required", "marketingOptIn": label|null, "additionalOptIn": label|null}.
ALTER TABLE calendars ADD COLUMN subscribe_page jsonb NOT NULL DEFAULT '{}';
