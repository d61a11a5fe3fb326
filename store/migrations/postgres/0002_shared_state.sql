-- State the web server kept in memory moves here, so that several Herald
-- instances on one database share it: admin console sessions and the
-- per-client rate-limit counters.

-- A console session. The cookie holds a random id; only its SHA-256 is
-- kept, so the table holds no usable cookie. flash is the message for the
-- session's next page, '' for none.
CREATE TABLE admin_sessions (
    id_hash     TEXT COLLATE "C" PRIMARY KEY,
    csrf        TEXT COLLATE "C" NOT NULL,
    flash       TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);

CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- One window of a rate limit: n events of client_key counted in bucket
-- ("login", "signup") in the window starting at window_start. A row is
-- kept until expires_at, when the window no longer counts.
CREATE TABLE rate_limits (
    bucket        TEXT COLLATE "C" NOT NULL,
    client_key    TEXT COLLATE "C" NOT NULL,
    window_start  TEXT COLLATE "C" NOT NULL,
    expires_at    TEXT COLLATE "C" NOT NULL,
    n             BIGINT NOT NULL,
    PRIMARY KEY (bucket, client_key, window_start)
);

CREATE INDEX rate_limits_expires ON rate_limits (expires_at);
