-- The feeds Herald publishes: rendered documents, RFC 5005 archive paging
-- and the WebSub hub's subscribers.

-- Every rendered feed document (current feeds, archive pages, the OPML
-- list), so a restart serves the same bytes and validators without
-- rendering. path is the URL path below base_url.
CREATE TABLE feed_docs (
    path           TEXT PRIMARY KEY,
    feed_key       TEXT NOT NULL,          -- all | department:SLUG | topic:SLUG | opml
    kind           TEXT NOT NULL,          -- current | archive | opml
    format         TEXT NOT NULL,          -- atom | rss | json | opml
    page           INTEGER NOT NULL DEFAULT 0,
    body           BLOB NOT NULL,
    size           INTEGER NOT NULL,
    gzip           BLOB NOT NULL,
    etag           TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    rendered_at    TEXT NOT NULL
);
CREATE INDEX feed_docs_key ON feed_docs (feed_key, kind, page);

-- Paging state of each feed's archive: full pages hold page_size releases
-- in the order Herald first stored them, so a full page never changes.
-- id_sum lets the renderer notice that a topic's older membership changed
-- (a new rule re-tagged the archive) and rebuild its pages.
CREATE TABLE feed_archives (
    feed_key   TEXT PRIMARY KEY,
    page_size  INTEGER NOT NULL,
    pages      INTEGER NOT NULL,
    last_id    INTEGER NOT NULL,
    id_sum     INTEGER NOT NULL
) WITHOUT ROWID;

-- Archive pages walk a department's releases in id order.
CREATE INDEX releases_department_id ON releases (department_id, id);

-- Small values the feed renderer keeps for itself (the configuration its
-- cache was rendered with).
CREATE TABLE feed_meta (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- Verified WebSub subscriptions to Herald's own feeds. topic is a feed URL.
CREATE TABLE websub_subscriptions (
    id                INTEGER PRIMARY KEY,
    topic             TEXT NOT NULL,
    callback          TEXT NOT NULL,
    secret            TEXT NOT NULL DEFAULT '',
    lease_seconds     INTEGER NOT NULL,
    expires_at        TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    last_delivery_at  TEXT NOT NULL DEFAULT '',
    last_error        TEXT NOT NULL DEFAULT '',
    UNIQUE (topic, callback)
);
CREATE INDEX websub_subscriptions_expires ON websub_subscriptions (expires_at);

-- Subscribe and unsubscribe requests waiting for verification of intent.
-- A newer request for the same topic and callback replaces an older one.
CREATE TABLE websub_requests (
    id               INTEGER PRIMARY KEY,
    mode             TEXT NOT NULL,        -- subscribe | unsubscribe
    topic            TEXT NOT NULL,
    callback         TEXT NOT NULL,
    secret           TEXT NOT NULL DEFAULT '',
    lease_seconds    INTEGER NOT NULL DEFAULT 0,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    UNIQUE (topic, callback)
);
CREATE INDEX websub_requests_due ON websub_requests (next_attempt_at);

-- Content distribution owed to a subscriber: at most one per subscription,
-- always of the feed's newest bytes. seq grows when another change arrives
-- while a delivery is in flight, so that change is delivered too.
CREATE TABLE websub_deliveries (
    subscription_id  INTEGER PRIMARY KEY REFERENCES websub_subscriptions(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL DEFAULT 1,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL
);
CREATE INDEX websub_deliveries_due ON websub_deliveries (next_attempt_at);
