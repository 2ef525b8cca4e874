/* dbtool: job_runs prune */
DELETE FROM dbtool.job_runs WHERE started_at < $1
