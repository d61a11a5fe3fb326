-- Departments, sources, topics and releases: the archive every other part reads.
-- Times are UTC text in the fixed-width form 2006-01-02T15:04:05.000000Z so
-- they sort as strings.

CREATE TABLE departments (
    id          INTEGER PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    url         TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE sources (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    url              TEXT NOT NULL,
    department_id    INTEGER NOT NULL REFERENCES departments(id),
    format           TEXT NOT NULL DEFAULT 'auto',
    enabled          INTEGER NOT NULL DEFAULT 1,
    etag             TEXT NOT NULL DEFAULT '',
    last_modified    TEXT NOT NULL DEFAULT '',
    last_pull_at     TEXT NOT NULL DEFAULT '',
    last_success_at  TEXT NOT NULL DEFAULT '',
    last_status      TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    failure_count    INTEGER NOT NULL DEFAULT 0,
    next_pull_at     TEXT NOT NULL DEFAULT '',
    pulled_once      INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);

CREATE TABLE releases (
    id             INTEGER PRIMARY KEY,
    source_id      INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    department_id  INTEGER NOT NULL REFERENCES departments(id),
    guid           TEXT NOT NULL,
    link           TEXT NOT NULL DEFAULT '',
    title          TEXT NOT NULL,
    summary        TEXT NOT NULL DEFAULT '',
    body           TEXT NOT NULL DEFAULT '',
    categories     TEXT NOT NULL DEFAULT '[]',
    document_type  TEXT NOT NULL DEFAULT '',
    content_hash   TEXT NOT NULL,
    published_at   TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    first_seen_at  TEXT NOT NULL,
    changed_at     TEXT NOT NULL,
    edit_count     INTEGER NOT NULL DEFAULT 0,
    -- alertable: 1 when the release may be announced to subscribers (new, not
    -- back catalogue, not older than the alert age). alert_version grows when
    -- an edit deserves a fresh alert (title change); alert_pending is 1 until
    -- the alerts side has fanned out alert_version.
    alertable      INTEGER NOT NULL DEFAULT 0,
    alert_version  INTEGER NOT NULL DEFAULT 1,
    alert_pending  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (source_id, guid)
);
CREATE INDEX releases_published ON releases (published_at DESC, id DESC);
CREATE INDEX releases_department ON releases (department_id, published_at DESC, id DESC);
CREATE INDEX releases_first_seen ON releases (first_seen_at) WHERE alertable = 1;
CREATE INDEX releases_alert_pending ON releases (id) WHERE alert_pending = 1;

CREATE TABLE topics (
    id           INTEGER PRIMARY KEY,
    slug         TEXT NOT NULL UNIQUE,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    rule         TEXT NOT NULL DEFAULT '{}',
    retired_at   TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- published_at is copied from the release so a topic's newest entries come
-- straight off this index without touching the releases table.
CREATE TABLE release_topics (
    topic_id      INTEGER NOT NULL REFERENCES topics(id) ON DELETE CASCADE,
    release_id    INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    published_at  TEXT NOT NULL,
    PRIMARY KEY (topic_id, release_id)
) WITHOUT ROWID;
CREATE INDEX release_topics_newest ON release_topics (topic_id, published_at DESC, release_id DESC);
CREATE INDEX release_topics_release ON release_topics (release_id);

-- Feed keys ("all", "department:SLUG", "topic:SLUG") whose content changed
-- and must be re-rendered. Written in the same transaction as the change, so
-- a crash between a pull and a render loses nothing.
CREATE TABLE feed_dirty (
    key       TEXT PRIMARY KEY,
    marked_at TEXT NOT NULL
) WITHOUT ROWID;

-- Pull history, for the admin dashboard and metrics.
CREATE TABLE pulls (
    id          INTEGER PRIMARY KEY,
    source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    duration_ms INTEGER NOT NULL,
    status      TEXT NOT NULL,
    new_count   INTEGER NOT NULL DEFAULT 0,
    updated_count INTEGER NOT NULL DEFAULT 0,
    unchanged_count INTEGER NOT NULL DEFAULT 0,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX pulls_started ON pulls (started_at DESC);

-- Small key/value settings Herald keeps for itself (a generated token key).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
