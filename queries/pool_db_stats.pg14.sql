/* dbtool: pool_db_stats */
-- Transaction counters of every database; active_time + idle_in_transaction_time (ms) is
-- the time backends spent inside transactions, so its growth over the window / window = mean busy.
SELECT sum(xact_commit + xact_rollback)::float8 AS xacts,
       sum(active_time + idle_in_transaction_time)::float8 AS busy_ms
FROM pg_stat_database
