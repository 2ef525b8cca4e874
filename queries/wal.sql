/* dbtool: wal */
-- pg_wal's size and its limits; pg_ls_waldir() and pg_ls_archive_statusdir() list one
-- directory each (no per-table work) and need pg_monitor. pg_stat_wal exists from 14 on.
SELECT (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())::float8 AS wal_bytes,
       (SELECT count(*) FROM pg_ls_waldir())::float8 AS wal_files,
       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready')::float8 AS ready_files,
       (SELECT setting::float8 FROM pg_settings WHERE name = 'wal_segment_size') AS segment_bytes,
       pg_size_bytes(current_setting('max_wal_size'))::float8 AS max_wal_bytes,
       pg_size_bytes(current_setting('max_slot_wal_keep_size'))::float8 AS max_slot_keep_bytes,
       NULL::float8 AS wal_records,
       NULL::float8 AS wal_fpi,
       NULL::float8 AS wal_generated_bytes,
       NULL::float8 AS wal_buffers_full
