/* dbtool archive: replica lag */
-- The slowest standby's replay lag; 0 with no standby (nothing to wait for).
SELECT coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 AS lag_seconds FROM pg_stat_replication
