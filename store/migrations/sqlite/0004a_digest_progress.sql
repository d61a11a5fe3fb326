-- A digest run's progress, written with each batch of messages: every
-- subscriber with an id up to after_subscriber has been handled, so a run
-- interrupted by a crash resumes after it instead of composing everything
-- again. (It follows 0004_subscribers.sql, which created digest_runs.)
ALTER TABLE digest_runs ADD COLUMN after_subscriber INTEGER NOT NULL DEFAULT 0;
