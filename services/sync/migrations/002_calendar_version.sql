-- The version of the merchant's calendar (name, description, color) last shown in the pushed calendar.
ALTER TABLE targets ADD COLUMN calendar_version integer;
