/* dbtool: maintenance_progress */
-- Maintenance running now, one row per command, from the progress views (all of them exist
-- from PostgreSQL 13 on; the columns read here are the same through 18), with how far it is
-- and how long it has run. A relation of another database shows as its oid: regclass resolves
-- names in the connected database only. Other roles' sessions are visible to
-- pg_read_all_stats (part of pg_monitor).
WITH p AS (
    SELECT pid, datname, relid, 'vacuum' AS command, phase,
           heap_blks_scanned::float8 AS done, heap_blks_total::float8 AS total
    FROM pg_stat_progress_vacuum
    UNION ALL
    SELECT pid, datname, relid, 'analyze', phase, sample_blks_scanned, sample_blks_total
    FROM pg_stat_progress_analyze
    UNION ALL
    SELECT pid, datname, relid, 'create_index', phase,
           CASE WHEN blocks_total > 0 THEN blocks_done ELSE tuples_done END,
           CASE WHEN blocks_total > 0 THEN blocks_total ELSE tuples_total END
    FROM pg_stat_progress_create_index
    UNION ALL
    SELECT pid, datname, relid, CASE command WHEN 'VACUUM FULL' THEN 'vacuum_full' ELSE 'cluster' END,
           phase, heap_blks_scanned, heap_blks_total
    FROM pg_stat_progress_cluster
)
SELECT p.pid,
       p.datname,
       CASE WHEN p.datname = current_database() THEN p.relid::regclass::text ELSE 'oid ' || p.relid END AS relation,
       CASE WHEN a.backend_type = 'autovacuum worker' AND p.command = 'vacuum' THEN 'autovacuum'
            WHEN a.backend_type = 'autovacuum worker' THEN 'autoanalyze'
            ELSE p.command END AS command,
       p.phase,
       CASE WHEN p.total > 0 THEN (100 * p.done / p.total)::float8 END AS percent,
       extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::float8 AS running_seconds,
       coalesce(a.backend_type = 'autovacuum worker' AND a.query LIKE '%(to prevent wraparound)%', false)
           AS wraparound
FROM p
LEFT JOIN pg_stat_activity a ON a.pid = p.pid
ORDER BY running_seconds DESC NULLS LAST, p.pid
