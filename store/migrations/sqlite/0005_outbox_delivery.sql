-- Delivery state for the outbox.
--
-- claim_token names the worker's claim that holds a row in 'sending', so a
-- worker whose lease ran out cannot overwrite what the worker that took the
-- row over recorded. A claimed row's next_attempt_at is its lease expiry:
-- the outbox_due index then finds both pending rows and abandoned claims
-- (claimed_until is not used). The default has a token's width, so that
-- claiming a row changes no column's size and SQLite can rewrite only the
-- pages that changed, not a digest's whole chain of overflow pages.
--
-- retry_from is when the current run of attempts began ('' means
-- created_at); an admin's retry of a failed message starts a new run.
ALTER TABLE outbox ADD COLUMN claim_token TEXT NOT NULL DEFAULT '000000000000000000000000';
ALTER TABLE outbox ADD COLUMN retry_from TEXT NOT NULL DEFAULT '';

-- Finished messages whose bodies are still stored, for the purge.
CREATE INDEX outbox_unpurged ON outbox (created_at)
    WHERE purged = 0 AND status IN ('sent', 'failed', 'suppressed');
