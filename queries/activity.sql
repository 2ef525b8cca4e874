/* dbtool: activity */
-- Every backend once; the connections, long-transaction and waits checks read these rows.
-- Query text is only kept for sessions that are not idle, and truncated.
SELECT pid,
       coalesce(datname, '') AS datname,
       coalesce(usename, '') AS usename,
       coalesce(application_name, '') AS application_name,
       coalesce(backend_type, '') AS backend_type,
       state,
       wait_event_type,
       wait_event,
       extract(epoch FROM now() - xact_start)::float8 AS xact_seconds,
       extract(epoch FROM now() - query_start)::float8 AS query_seconds,
       extract(epoch FROM now() - state_change)::float8 AS state_seconds,
       CASE WHEN state IS DISTINCT FROM 'idle' THEN left(query, 200) END AS query,
       pid = pg_backend_pid() AS is_self
FROM pg_stat_activity
