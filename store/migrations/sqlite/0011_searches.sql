-- Email alerts for any search: a subscriber follows a search (words,
-- and optionally a department, a topic and a document type) as others
-- follow a topic, and new releases are matched against it as they are
-- stored (store/searchmatch.go).

-- The document-type filter compares a release's categories in one form
-- (DocumentTypeKey: lower case, words joined by "_"), each between line
-- feeds, which a category never holds. Releases stored before this have
-- NULL until the store fills it in when it next opens.
ALTER TABLE releases ADD COLUMN category_keys TEXT;
CREATE INDEX releases_category_keys_pending ON releases (id) WHERE category_keys IS NULL;

-- The document types upstream sources declare (GOV.UK's press_release,
-- news_story...), for the search page to offer.
CREATE TABLE document_types (
    name  TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO document_types (name) SELECT DISTINCT document_type FROM releases WHERE document_type <> '';

-- A search people follow. query is the normalised text
-- (NormalizeSearchText), doc_type a DocumentTypeKey or ''; one row per
-- search. name is how emails and pages call it, made from the templates
-- when the search is first asked for.
CREATE TABLE searches (
    id             INTEGER PRIMARY KEY,
    query          TEXT NOT NULL,
    department_id  INTEGER REFERENCES departments(id) ON DELETE CASCADE,
    topic_id       INTEGER REFERENCES topics(id) ON DELETE CASCADE,
    doc_type       TEXT NOT NULL DEFAULT '',
    name           TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX searches_one ON searches (query, coalesce(department_id, 0), coalesce(topic_id, 0), doc_type);

-- Which releases matched which followed searches when they were stored,
-- for immediate alerts and digests, as release_topics is for topics.
CREATE TABLE release_searches (
    search_id   INTEGER NOT NULL REFERENCES searches(id) ON DELETE CASCADE,
    release_id  INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    PRIMARY KEY (search_id, release_id)
) WITHOUT ROWID;
CREATE INDEX release_searches_release ON release_searches (release_id);

-- A subscription now follows exactly one topic, department or search.
-- SQLite cannot change a table's CHECK, so the table is made again, with
-- its ids and its AUTOINCREMENT high-water mark (an erased subscription's
-- id, which old links carry, is never given out again).
CREATE TABLE subscriptions_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    topic_id       INTEGER REFERENCES topics(id) ON DELETE CASCADE,
    department_id  INTEGER REFERENCES departments(id) ON DELETE CASCADE,
    search_id      INTEGER REFERENCES searches(id) ON DELETE CASCADE,
    frequency      TEXT NOT NULL CHECK (frequency IN ('immediately', 'daily', 'weekly')),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'active', 'ended')),
    created_at     TEXT NOT NULL,
    confirmed_at   TEXT NOT NULL DEFAULT '',
    ended_at       TEXT NOT NULL DEFAULT '',
    CHECK ((topic_id IS NOT NULL) + (department_id IS NOT NULL) + (search_id IS NOT NULL) = 1)
);
INSERT INTO subscriptions_new (id, subscriber_id, topic_id, department_id, frequency, status, created_at, confirmed_at, ended_at)
    SELECT id, subscriber_id, topic_id, department_id, frequency, status, created_at, confirmed_at, ended_at FROM subscriptions;
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'subscriptions_new', seq FROM sqlite_sequence WHERE name = 'subscriptions'
    AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'subscriptions_new');
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'subscriptions'), 0))
    WHERE name = 'subscriptions_new';
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;

-- One active subscription per subscriber and topic, department or search.
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions
    (subscriber_id, coalesce(topic_id, 0), coalesce(department_id, 0), coalesce(search_id, 0)) WHERE status = 'active';
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id, status);
CREATE INDEX subscriptions_topic ON subscriptions (topic_id, frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_department ON subscriptions (department_id, frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_search ON subscriptions (search_id, frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_frequency ON subscriptions (frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_pending ON subscriptions (created_at) WHERE status = 'pending';
-- Housekeeping finds searches nobody follows any more.
CREATE INDEX subscriptions_search_any ON subscriptions (search_id) WHERE search_id IS NOT NULL;
