/* dbtool: pool_db_stats */
-- Transaction counters of every database; before 14 there is no active_time.
SELECT sum(xact_commit + xact_rollback)::float8 AS xacts,
       NULL::float8 AS busy_ms
FROM pg_stat_database
