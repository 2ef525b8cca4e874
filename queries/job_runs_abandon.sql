/* dbtool: job_runs abandon stale runs */
-- $1 job, $2 kind, $3 the caller's own run id (kept), $4 the scheduler's lock key for the job.
-- A row with a scheduled_at is dead when nobody holds the job's advisory lock (pg_locks
-- splits the bigint key into classid, high 32 bits, and objid, low 32 bits); a hand-started
-- row is dead because the caller holds the lock such runs take (see db::job_runs).
UPDATE dbtool.job_runs r
SET status = 'abandoned', finished_at = now(),
    message = 'abandoned: the run ended without recording its end (killed, or its session was '
              'terminated); marked by a later run that found its lock free'
WHERE r.job = $1 AND r.kind = $2 AND r.status = 'running' AND r.id IS DISTINCT FROM $3
  AND (r.scheduled_at IS NULL OR NOT EXISTS (
       SELECT 1 FROM pg_locks l
       WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         AND l.classid = (($4::bigint >> 32) & 4294967295)::oid
         AND l.objid = ($4::bigint & 4294967295)::oid))
RETURNING r.id
