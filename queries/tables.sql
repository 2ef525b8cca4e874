/* dbtool: tables */
-- Per-table vacuum and I/O statistics for the connected database, read once and shared by
-- the vacuum, cache-hit and database-activity checks. The xid age includes the table's TOAST
-- relation, which freezes separately. The autovacuum trigger point honours per-table reloptions.
-- Statistics come from the pg_stat_get_* functions on pg_class oids, the functions
-- pg_stat_user_tables and pg_statio_user_tables are made of: joining those views reads
-- pg_class and pg_namespace twice more and sums index I/O table by table, which with 5,000
-- tables nearly doubled the query's CPU time (scripts/bench-health). Index I/O is summed per
-- table in one pass over pg_index instead.
-- The server settings are read once (a materialized one-row CTE), not on every row:
-- current_setting per table was an eighth of the query's backend CPU at 5,000 tables.
WITH settings AS MATERIALIZED (
    SELECT current_setting('autovacuum_vacuum_threshold')::float8 AS vac_threshold,
           current_setting('autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
           current_setting('autovacuum')::bool AS autovacuum,
           current_setting('block_size')::bigint AS block_size
), idx AS (
    SELECT indrelid,
           sum(pg_stat_get_blocks_hit(indexrelid))::bigint AS hit,
           sum(pg_stat_get_blocks_fetched(indexrelid))::bigint - sum(pg_stat_get_blocks_hit(indexrelid))::bigint AS read,
           sum(pg_stat_get_numscans(indexrelid))::bigint AS scans
    FROM pg_index
    GROUP BY indrelid
)
SELECT current_database() AS datname,
       n.nspname AS schemaname,
       c.relname,
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
       pg_stat_get_live_tuples(c.oid) AS n_live_tup,
       pg_stat_get_dead_tuples(c.oid) AS n_dead_tup,
       extract(epoch FROM now() - greatest(pg_stat_get_last_vacuum_time(c.oid),
                                           pg_stat_get_last_autovacuum_time(c.oid)))::float8 AS vacuum_age_seconds,
       extract(epoch FROM now() - greatest(pg_stat_get_last_analyze_time(c.oid),
                                           pg_stat_get_last_autoanalyze_time(c.oid)))::float8 AS analyze_age_seconds,
       coalesce(ro.vac_threshold, s.vac_threshold)
         + coalesce(ro.vac_scale, s.vac_scale)
           * greatest(c.reltuples, 0)::float8 AS autovacuum_threshold,
       coalesce(ro.enabled, true) AND s.autovacuum AS autovacuum_enabled,
       pg_stat_get_blocks_hit(c.oid) AS heap_blks_hit,
       pg_stat_get_blocks_fetched(c.oid) - pg_stat_get_blocks_hit(c.oid) AS heap_blks_read,
       idx.hit AS idx_blks_hit,
       idx.read AS idx_blks_read,
       pg_stat_get_numscans(c.oid) AS seq_scan,
       pg_stat_get_tuples_returned(c.oid) AS seq_tup_read,
       idx.scans AS idx_scan,
       c.relpages::bigint * s.block_size AS heap_bytes
FROM pg_class c
CROSS JOIN settings s
JOIN pg_namespace n ON n.oid = c.relnamespace
-- relkind 't' lets the planner hash only TOAST relations, not all of pg_class.
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid AND t.relkind = 't'
LEFT JOIN idx ON idx.indrelid = c.oid
LEFT JOIN LATERAL (
    SELECT max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold')::float8 AS vac_threshold,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled')::bool AS enabled
    FROM pg_options_to_table(c.reloptions)
) ro ON c.reloptions IS NOT NULL
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
