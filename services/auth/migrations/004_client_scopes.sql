-- Scopes an OAuth client's access tokens carry beyond its own account. Only the admin CLI grants
-- one: `calendar-pages` lets the web service read calendars and subscribe visitors for any account
-- (CONTRACT: the public calendar pages). Merchants' clients have none.
ALTER TABLE clients ADD COLUMN scopes text[] NOT NULL DEFAULT '{}';
