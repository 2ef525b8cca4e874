/* dbtool: top_queries */
-- The statements with the most total execution time, with totals over every tracked
-- statement (the Prometheus counters). showtext := false: no query text is read, so the
-- server neither loads nor copies pg_stat_statements' query-text file (top_query_texts.sql
-- fetches the texts of the top statements, for the table and JSON reports only).
-- Fails with undefined_function when pg_stat_statements is not installed in this database:
-- the check reports that as a note, not an error.
-- dbtool's own statements are those of the role it connects as, left out of the ranking and
-- the totals (their cost is in dbtool_check_duration_seconds already) unless that role is a
-- superuser: a superuser runs the application's and the DBA's statements too.
WITH me AS (
    SELECT oid, rolname, rolsuper FROM pg_roles WHERE rolname = session_user
), s AS (
    SELECT queryid, userid, dbid, calls, total_exec_time, rows
    FROM pg_stat_statements(showtext := false)
    WHERE userid IS DISTINCT FROM (SELECT oid FROM me WHERE NOT rolsuper)
), totals AS (
    SELECT count(*) AS statements,
           coalesce(sum(calls), 0)::float8 AS all_calls,
           coalesce(sum(total_exec_time), 0)::float8 / 1000 AS all_exec_seconds,
           coalesce(sum(rows), 0)::float8 AS all_rows,
           (SELECT rolname FROM me) AS own_role,
           (SELECT NOT rolsuper FROM me) AS own_excluded
    FROM s
)
SELECT totals.*,
       t.queryid::text AS queryid,
       r.rolname,
       d.datname,
       t.calls,
       (t.total_exec_time / 1000)::float8 AS total_seconds,
       (t.total_exec_time / nullif(t.calls, 0))::float8 AS mean_ms,
       t.rows
FROM totals
LEFT JOIN LATERAL (SELECT * FROM s ORDER BY total_exec_time DESC LIMIT 100) t ON true
LEFT JOIN pg_roles r ON r.oid = t.userid
LEFT JOIN pg_database d ON d.oid = t.dbid
ORDER BY t.total_exec_time DESC NULLS LAST
