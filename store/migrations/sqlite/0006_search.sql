-- Full-text search over releases' titles, summaries and bodies.
--
-- The index is contentless (it keeps only the tokens, not a second copy of
-- the text) and is fed plain text, so tag names and link targets are not
-- searchable words. New and edited releases are indexed by ApplyPull in its
-- transaction (a trigger per row made FTS5 flush its index after every
-- insert, halving ingest speed); a trigger drops deleted ones.
--
-- As first released, this migration also indexed the releases already
-- stored, and kept edits indexed with a trigger, through a SQL function the
-- store registered to strip tags. The store reads no HTML any more, so that
-- part is gone: 0008 drops the trigger where it exists and has every
-- release stored before it indexed again with plain text from the pull side.

CREATE VIRTUAL TABLE releases_fts USING fts5(
    title, summary, body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER releases_fts_delete AFTER DELETE ON releases BEGIN
    DELETE FROM releases_fts WHERE rowid = old.id;
END;
