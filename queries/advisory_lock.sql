/* dbtool: advisory lock (one runner per job) */
-- The marker is repeated inside the statement: PostgreSQL 18's pg_stat_statements drops a
-- leading comment, and pool-advise leaves dbtool's own statements out by it (pool_statements.sql).
-- Session-level and non-blocking: a second runner learns at once that the job is taken.
SELECT /* dbtool */ pg_try_advisory_lock($1::bigint) AS locked
