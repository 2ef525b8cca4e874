/* dbtool: blocked */
-- Sessions waiting on a lock and every session in their blocking chains.
-- pg_blocking_pids() takes the lock manager's locks briefly, so it is only called for
-- sessions that are actually waiting on a lock. Before PostgreSQL 14 there is no
-- pg_locks.waitstart: the wait is measured from the start of the waiting statement.
WITH waiting AS (
    SELECT pid, pg_blocking_pids(pid) AS blockers
    FROM pg_stat_activity
    WHERE wait_event_type = 'Lock'
), involved AS (
    SELECT pid FROM waiting WHERE cardinality(blockers) > 0
    UNION
    SELECT unnest(blockers) FROM waiting
)
SELECT i.pid,
       coalesce(a.usename, '') AS usename,
       coalesce(a.datname, '') AS datname,
       a.state,
       extract(epoch FROM now() - a.xact_start)::float8 AS xact_seconds,
       CASE WHEN cardinality(w.blockers) > 0
            THEN extract(epoch FROM now() - a.query_start)::float8 END AS wait_seconds,
       left(a.query, 200) AS query,
       array_to_string(w.blockers, ',') AS blocked_by
FROM involved i
LEFT JOIN pg_stat_activity a ON a.pid = i.pid
LEFT JOIN waiting w ON w.pid = i.pid
