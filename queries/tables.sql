/* dbtool: tables */
-- Per-table vacuum and I/O statistics for the connected database, read once and shared by
-- the vacuum, cache-hit and database-activity checks (scan counts). The xid age includes the
-- table's TOAST relation, which freezes separately. The autovacuum trigger point honours per-table reloptions.
SELECT current_database() AS datname,
       n.nspname AS schemaname,
       c.relname,
       greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::bigint AS xid_age,
       s.n_live_tup,
       s.n_dead_tup,
       extract(epoch FROM now() - greatest(s.last_vacuum, s.last_autovacuum))::float8 AS vacuum_age_seconds,
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 AS analyze_age_seconds,
       coalesce(ro.vac_threshold, current_setting('autovacuum_vacuum_threshold')::float8)
         + coalesce(ro.vac_scale, current_setting('autovacuum_vacuum_scale_factor')::float8)
           * greatest(c.reltuples, 0)::float8 AS autovacuum_threshold,
       coalesce(ro.enabled, true) AND current_setting('autovacuum')::bool AS autovacuum_enabled,
       io.heap_blks_hit,
       io.heap_blks_read,
       io.idx_blks_hit,
       io.idx_blks_read,
       s.seq_scan,
       s.seq_tup_read,
       s.idx_scan,
       c.relpages::bigint * current_setting('block_size')::bigint AS heap_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
LEFT JOIN pg_statio_user_tables io ON io.relid = c.oid
LEFT JOIN LATERAL (
    SELECT max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold')::float8 AS vac_threshold,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor')::float8 AS vac_scale,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled')::bool AS enabled
    FROM pg_options_to_table(c.reloptions)
) ro ON c.reloptions IS NOT NULL
WHERE c.relkind IN ('r', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
