/* dbtool: migrate lock */
-- Transaction-level: released with the migration's COMMIT or ROLLBACK, whatever happens.
SELECT pg_advisory_xact_lock($1::bigint)
