/* dbtool: pool_activity */
-- Client backends now (dbtool's own session excluded) and how many hold a transaction.
SELECT count(*) AS client_backends,
       count(*) FILTER (WHERE state IN ('active', 'idle in transaction', 'idle in transaction (aborted)'))
         AS busy_backends
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
