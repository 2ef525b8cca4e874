/* dbtool: job_runs start */
-- Claims (job, scheduled_at) once: the unique key is what lets two scheduler replicas agree
-- that a scheduled time already ran. A NULL scheduled_at (a run started by hand) never conflicts.
INSERT INTO dbtool.job_runs (job, kind, target, scheduled_at, runner)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (job, scheduled_at) DO NOTHING
RETURNING id
