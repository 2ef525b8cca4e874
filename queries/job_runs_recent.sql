/* dbtool: job_runs recent */
-- The latest runs, newest first, of one job ($1) or of all ($1 NULL); at most $2.
SELECT id, job, kind, target, scheduled_at, started_at, finished_at, status, runner,
       rows, bytes, message
FROM dbtool.job_runs
WHERE $1::text IS NULL OR job = $1
ORDER BY started_at DESC, id DESC
LIMIT $2
