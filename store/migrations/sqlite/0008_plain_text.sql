-- The store reads no HTML. The pull side gives it the plain text of each
-- release's summary and body (made with templates/text): the summary's is
-- kept here, to match topic rules against releases already stored, and both
-- are indexed for search by the statement that stores the release. The
-- update trigger of 0006, which stripped tags inside SQLite, goes.
--
-- Releases stored before this have no plain text yet: NULL marks them until
-- the pull side supplies it when Herald next starts, which also indexes them
-- for search again with the rule new releases get.

ALTER TABLE releases ADD COLUMN plain_summary TEXT;

CREATE INDEX releases_plain_pending ON releases (id) WHERE plain_summary IS NULL;

DROP TRIGGER IF EXISTS releases_fts_update;
