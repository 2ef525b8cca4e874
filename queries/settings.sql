/* dbtool: settings */
-- Server settings several checks need; read once per run.
SELECT name, setting
FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections',
               'autovacuum', 'autovacuum_freeze_max_age', 'autovacuum_multixact_freeze_max_age',
               'fsync', 'full_page_writes', 'track_counts', 'data_checksums', 'server_version',
               'server_version_num', 'archive_mode', 'wal_level', 'max_wal_senders',
               'max_prepared_transactions', 'track_activity_query_size', 'block_size',
               'archive_command', 'archive_library', 'zero_damaged_pages', 'ignore_checksum_failure',
               'max_wal_size', 'checkpoint_timeout', 'synchronous_commit', 'wal_sender_timeout')
