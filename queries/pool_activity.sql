/* dbtool: pool_activity */
-- Client backends now (dbtool's own session excluded) and how many hold a transaction; and
-- who runs dbtool, pg_dump or pg_restore now (dbtool's pg_dump calls itself "dbtool"): their
-- statements carry no /* dbtool */ comment, so session features of the same user and database
-- in the window are flagged as possibly theirs.
SELECT count(*) AS client_backends,
       count(*) FILTER (WHERE state IN ('active', 'idle in transaction', 'idle in transaction (aborted)'))
         AS busy_backends,
       coalesce(string_agg(DISTINCT usename || ' on ' || datname, ', ')
         FILTER (WHERE application_name IN ('dbtool', 'pg_dump', 'pg_dumpall', 'pg_restore')), '')
         AS maintenance
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
