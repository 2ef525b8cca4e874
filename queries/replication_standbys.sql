/* dbtool: replication_standbys */
-- Standbys streaming from this server (a primary, or a cascading standby). The *_lag
-- intervals are NULL once a standby has caught up and nothing new is written, which is
-- "no lag", not "unknown". Bytes behind are measured from this server's current position;
-- pg_current_wal_lsn() is an error during recovery, hence the receive position there.
WITH pos AS (
    SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn
)
SELECT r.pid,
       coalesce(r.application_name, '') AS application_name,
       coalesce(host(r.client_addr), 'local') AS client_addr,
       r.state,
       r.sync_state,
       extract(epoch FROM r.write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM r.flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM r.replay_lag)::float8 AS replay_lag_seconds,
       pg_wal_lsn_diff(pos.lsn, r.sent_lsn)::float8 AS sent_lag_bytes,
       pg_wal_lsn_diff(pos.lsn, r.write_lsn)::float8 AS write_lag_bytes,
       pg_wal_lsn_diff(pos.lsn, r.flush_lsn)::float8 AS flush_lag_bytes,
       pg_wal_lsn_diff(pos.lsn, r.replay_lsn)::float8 AS replay_lag_bytes
FROM pg_stat_replication r, pos
