/* dbtool: autovacuum_workers */
-- Autovacuum workers at work, one row each (a single row of NULLs but max_workers when none),
-- against autovacuum_max_workers: all of them busy for long means vacuum cannot keep up.
-- Anti-wraparound autovacuums say so in their query text; one waiting on a lock is not in
-- the progress views yet (it starts reporting progress once it holds the table).
SELECT current_setting('autovacuum_max_workers')::float8 AS max_workers, w.*
FROM (SELECT 1) AS one
LEFT JOIN LATERAL (
    SELECT pid,
           datname,
           left(query, 200) AS query,
           wait_event_type,
           wait_event,
           extract(epoch FROM now() - coalesce(xact_start, backend_start))::float8 AS running_seconds,
           coalesce(query LIKE '%(to prevent wraparound)%', false) AS wraparound
    FROM pg_stat_activity
    WHERE backend_type = 'autovacuum worker'
) AS w ON true
ORDER BY w.pid
