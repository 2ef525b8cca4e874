/* dbtool: job_runs last scheduled time of a job */
SELECT max(scheduled_at) AS last FROM dbtool.job_runs WHERE job = $1
