/* dbtool: checkpoints */
-- Checkpointer and background writer statistics before PostgreSQL 17 (pg_stat_bgwriter
-- holds both, and the buffers written by ordinary backends).
SELECT checkpoints_timed AS timed,
       checkpoints_req AS requested,
       checkpoint_write_time AS write_time_ms,
       checkpoint_sync_time AS sync_time_ms,
       buffers_checkpoint,
       buffers_clean,
       maxwritten_clean,
       buffers_backend,
       buffers_backend_fsync,
       buffers_alloc,
       extract(epoch FROM now() - stats_reset)::float8 AS stats_reset_seconds
FROM pg_stat_bgwriter
