/* dbtool: checkpoints */
-- PostgreSQL 17 split pg_stat_bgwriter: checkpoints live in pg_stat_checkpointer, and the
-- writes of ordinary backends (the old buffers_backend / buffers_backend_fsync) in pg_stat_io.
SELECT c.num_timed AS timed,
       c.num_requested AS requested,
       c.write_time AS write_time_ms,
       c.sync_time AS sync_time_ms,
       c.buffers_written AS buffers_checkpoint,
       b.buffers_clean,
       b.maxwritten_clean,
       io.writes AS buffers_backend,
       io.fsyncs AS buffers_backend_fsync,
       b.buffers_alloc,
       extract(epoch FROM now() - c.stats_reset)::float8 AS stats_reset_seconds
FROM pg_stat_checkpointer c,
     pg_stat_bgwriter b,
     (SELECT coalesce(sum(writes), 0)::bigint AS writes, coalesce(sum(fsyncs), 0)::bigint AS fsyncs
      FROM pg_stat_io
      WHERE backend_type NOT IN ('checkpointer', 'background writer') AND object = 'relation') io
