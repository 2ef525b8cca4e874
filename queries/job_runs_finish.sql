/* dbtool: job_runs finish */
UPDATE dbtool.job_runs
SET finished_at = now(), status = $2, rows = $3, bytes = $4, message = $5
WHERE id = $1
