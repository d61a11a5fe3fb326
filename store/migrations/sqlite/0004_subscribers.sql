-- Subscribers, their subscriptions, and the digest periods already run.
-- Ids use AUTOINCREMENT so that an erased subscriber's or subscription's id
-- is never given to someone else: links carry these ids in signed tokens,
-- and an old unsubscribe link (they never expire) must never act on a
-- stranger.

CREATE TABLE subscribers (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Lower-cased, so one mailbox is one subscriber.
    address             TEXT NOT NULL UNIQUE,
    created_at          TEXT NOT NULL,
    -- Set when the address first proved it receives our mail.
    confirmed_at        TEXT NOT NULL DEFAULT '',
    -- An address change waiting for confirmation at the new address; the
    -- nonce ties the confirmation link to this request only.
    pending_address     TEXT NOT NULL DEFAULT '',
    pending_nonce       INTEGER NOT NULL DEFAULT 0,
    pending_address_at  TEXT NOT NULL DEFAULT '',
    -- When the subscriber's last active subscription ended; '' while one is
    -- active. Housekeeping erases the subscriber some time after it.
    last_ended_at       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX subscribers_idle ON subscribers (last_ended_at) WHERE last_ended_at <> '';
CREATE INDEX subscribers_unconfirmed ON subscribers (created_at) WHERE confirmed_at = '';
CREATE INDEX subscribers_confirmed ON subscribers (confirmed_at) WHERE confirmed_at <> '';

-- A subscription follows exactly one topic or one department. It is pending
-- until confirmed by email, then active, then ended (unsubscribed, replaced
-- by a confirmed change of frequency, or never confirmed).
CREATE TABLE subscriptions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    topic_id       INTEGER REFERENCES topics(id) ON DELETE CASCADE,
    department_id  INTEGER REFERENCES departments(id) ON DELETE CASCADE,
    frequency      TEXT NOT NULL CHECK (frequency IN ('immediately', 'daily', 'weekly')),
    status         TEXT NOT NULL CHECK (status IN ('pending', 'active', 'ended')),
    created_at     TEXT NOT NULL,
    confirmed_at   TEXT NOT NULL DEFAULT '',
    ended_at       TEXT NOT NULL DEFAULT '',
    CHECK ((topic_id IS NULL) <> (department_id IS NULL))
);
-- One active subscription per subscriber and topic or department.
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions (subscriber_id, ifnull(topic_id, 0), ifnull(department_id, 0))
    WHERE status = 'active';
CREATE INDEX subscriptions_subscriber ON subscriptions (subscriber_id, status);
-- Fan-out reads these in subscriber order, batch after batch.
CREATE INDEX subscriptions_topic ON subscriptions (topic_id, frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_department ON subscriptions (department_id, frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_frequency ON subscriptions (frequency, subscriber_id) WHERE status = 'active';
CREATE INDEX subscriptions_pending ON subscriptions (created_at) WHERE status = 'pending';

-- Digest periods, so each is run once. period_end is the scheduled instant;
-- wall_end is the same moment as the wall-clock time of the schedule in the
-- configured zone, from which the next period is computed.
CREATE TABLE digest_runs (
    frequency     TEXT NOT NULL,
    period_end    TEXT NOT NULL,
    period_start  TEXT NOT NULL,
    wall_end      TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'done')),
    releases      INTEGER NOT NULL DEFAULT 0,
    enqueued      INTEGER NOT NULL DEFAULT 0,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (frequency, period_end)
) WITHOUT ROWID;
