-- Full-text search over releases' titles, summaries and bodies.
--
-- The index is contentless (it keeps only the tokens, not a second copy of
-- the text) and is fed the text of the sanitised HTML through
-- herald_strip_tags, a function the store registers with the driver, so tag
-- names and link targets are not searchable words. New releases are indexed
-- by ApplyPull in one statement per pull, in its transaction (a trigger per
-- row made FTS5 flush its index after every insert, halving ingest speed);
-- triggers keep it in step with edits and deletes.

CREATE VIRTUAL TABLE releases_fts USING fts5(
    title, summary, body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER releases_fts_delete AFTER DELETE ON releases BEGIN
    DELETE FROM releases_fts WHERE rowid = old.id;
END;

CREATE TRIGGER releases_fts_update AFTER UPDATE OF title, summary, body ON releases BEGIN
    DELETE FROM releases_fts WHERE rowid = old.id;
    INSERT INTO releases_fts (rowid, title, summary, body)
    VALUES (new.id, new.title, herald_strip_tags(new.summary), herald_strip_tags(new.body));
END;

INSERT INTO releases_fts (rowid, title, summary, body)
SELECT id, title, herald_strip_tags(summary), herald_strip_tags(body) FROM releases;
