/* dbtool: databases */
-- One row per database: wraparound ages, block I/O and activity counters, and size. Read
-- once and shared by the vacuum, cache-hit and database-activity checks. The size needs
-- CONNECT on the database (or pg_read_all_stats, part of pg_monitor); NULL without it.
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
       CASE WHEN has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'USAGE')
            THEN pg_database_size(d.oid) END AS size_bytes,
       extract(epoch FROM s.stats_reset)::float8 AS stats_reset
FROM pg_database d
LEFT JOIN pg_stat_database s ON s.datid = d.oid
