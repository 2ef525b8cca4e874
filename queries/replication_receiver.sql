/* dbtool: replication_receiver */
-- This server's own recovery state; on a standby, how far replay is behind. Replay lag is 0
-- when everything received has been replayed: an idle primary writes nothing, and the age
-- of the last replayed transaction would otherwise grow forever (a false alarm).
SELECT pg_is_in_recovery() AS in_recovery,
       w.status AS receiver_status,
       extract(epoch FROM now() - w.last_msg_receipt_time)::float8 AS last_message_seconds,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() IS NOT NULL
                 AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
       END AS replay_lag_seconds,
       pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS replay_lag_bytes,
       CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END AS replay_paused
FROM (SELECT 1) one
LEFT JOIN pg_stat_wal_receiver w ON true
