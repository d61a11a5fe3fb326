-- The upstream time that moves only for a major change (GOV.UK's
-- public_timestamp), so an edit that upstream marks as major is announced
-- again while minor corrections are not.
ALTER TABLE releases ADD COLUMN major_version_at TEXT NOT NULL DEFAULT '';
