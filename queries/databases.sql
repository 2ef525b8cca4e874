/* dbtool: databases */
-- One row per database: wraparound ages and block I/O counters.
SELECT d.datname,
       d.datallowconn,
       age(d.datfrozenxid)::bigint AS xid_age,
       mxid_age(d.datminmxid)::bigint AS mxid_age,
       s.blks_hit,
       s.blks_read,
       extract(epoch FROM s.stats_reset)::float8 AS stats_reset
FROM pg_database d
LEFT JOIN pg_stat_database s ON s.datid = d.oid
