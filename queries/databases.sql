/* dbtool: databases */
-- One row per database: wraparound ages, block I/O and activity counters. Read once and
-- shared by the vacuum, cache-hit and database-activity checks. No pg_database_size(): it
-- stats every file of every database (slow with thousands of tables); see database_size.sql.
SELECT d.datname,
       d.datallowconn,
       age(d.datfrozenxid)::bigint AS xid_age,
       mxid_age(d.datminmxid)::bigint AS mxid_age,
       s.blks_hit,
       s.blks_read,
       s.xact_commit,
       s.xact_rollback,
       s.deadlocks,
       s.conflicts,
       s.temp_files,
       s.temp_bytes,
       s.tup_returned,
       s.tup_fetched,
       s.tup_inserted,
       s.tup_updated,
       s.tup_deleted,
       extract(epoch FROM s.stats_reset)::float8 AS stats_reset
FROM pg_database d
LEFT JOIN pg_stat_database s ON s.datid = d.oid
