/* dbtool: advisory lock (one runner per job) */
-- Session-level and non-blocking: a second runner learns at once that the job is taken.
SELECT pg_try_advisory_lock($1::bigint) AS locked
