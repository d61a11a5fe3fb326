-- The outbox: every email Herald will ever send is first a row here, keyed
-- by an idempotency key, so creating it twice is a no-op and a crash loses
-- nothing.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    key              TEXT NOT NULL UNIQUE,
    kind             TEXT NOT NULL,
    subscriber_id    INTEGER NOT NULL DEFAULT 0,
    to_addr          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    text_body        TEXT NOT NULL,
    html_body        TEXT NOT NULL,
    unsubscribe_url  TEXT NOT NULL DEFAULT '',
    message_id       TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending', -- pending | sending | sent | failed | suppressed
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    claimed_until    TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    sent_at          TEXT NOT NULL DEFAULT '',
    purged           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_status ON outbox (status, created_at);
CREATE INDEX outbox_subscriber ON outbox (subscriber_id);

-- Addresses Herald never mails again until an admin lifts the suppression.
CREATE TABLE suppressions (
    address     TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;

-- Permanent failures per address, counted towards suppression.
CREATE TABLE bounce_counts (
    address   TEXT PRIMARY KEY,
    failures  INTEGER NOT NULL DEFAULT 0,
    last_at   TEXT NOT NULL
) WITHOUT ROWID;
