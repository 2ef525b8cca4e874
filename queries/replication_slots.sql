/* dbtool: replication_slots */
-- Replication slots and the WAL each holds back. wal_status and safe_wal_size exist from
-- PostgreSQL 13 on (the oldest supported major).
SELECT slot_name,
       slot_type,
       coalesce(database, '') AS database,
       active,
       wal_status,
       safe_wal_size::float8 AS safe_wal_size,
       -- pg_current_wal_lsn() is the write position, which may trail a slot created a moment ago.
       greatest(0, pg_wal_lsn_diff(
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
           restart_lsn))::float8 AS retained_bytes
FROM pg_replication_slots
