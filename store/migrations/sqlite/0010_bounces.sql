-- Bounces and complaints that relays report after they accepted a
-- message (delivery status notifications, spam complaints, provider
-- webhooks).

-- What a suppression is for: 'bounce' (the address does not take mail;
-- a fresh double opt-in lifts it), 'complaint' (its owner marked Herald's
-- mail as spam; only an admin lifts it) or 'manual' (an admin's). source
-- is the input that reported it ('smtp' for a refusal during sending,
-- 'pipe', 'ses'...), outbox_id the message the report was about (0 when
-- none), report the report as received, bounded.
ALTER TABLE suppressions ADD COLUMN cause TEXT NOT NULL DEFAULT 'bounce';
ALTER TABLE suppressions ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE suppressions ADD COLUMN outbox_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE suppressions ADD COLUMN report TEXT NOT NULL DEFAULT '';
CREATE INDEX suppressions_created ON suppressions (created_at);

-- Reports already processed, so that a replayed one changes nothing:
-- report_key is "event:SOURCE:ID" for a provider's event id and
-- "message:OUTBOX_ID:KIND" for any report. No address is kept here.
CREATE TABLE bounce_reports (
    report_key   TEXT PRIMARY KEY,
    outbox_id    INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    source       TEXT NOT NULL,
    received_at  TEXT NOT NULL
);

-- Temporary failures (4.x.x) reported for an address, one per message;
-- enough of them within a window suppress the address.
CREATE TABLE transient_bounces (
    address    TEXT NOT NULL,
    outbox_id  INTEGER NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (address, outbox_id)
);

-- Provider webhooks name a message by the Message-ID Herald gave it.
CREATE INDEX outbox_message_id ON outbox (message_id);
