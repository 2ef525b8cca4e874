/* dbtool: top_queries */
-- The statements with the most total execution time, with totals over every tracked
-- statement (the Prometheus counters). Fails with undefined_table when pg_stat_statements
-- is not installed in this database: the check reports that as a note, not an error.
-- Query text is shown only to the statement's role or pg_read_all_stats, and truncated.
WITH s AS (
    SELECT queryid, userid, dbid, calls, total_exec_time, rows, query
    FROM pg_stat_statements
    -- dbtool's own statements: their cost is in dbtool_check_duration_seconds already.
    WHERE query NOT LIKE '/* dbtool%'
), totals AS (
    SELECT count(*) AS statements,
           coalesce(sum(calls), 0)::float8 AS all_calls,
           coalesce(sum(total_exec_time), 0)::float8 / 1000 AS all_exec_seconds,
           coalesce(sum(rows), 0)::float8 AS all_rows
    FROM s
)
SELECT totals.*,
       t.queryid::text AS queryid,
       r.rolname,
       d.datname,
       t.calls,
       (t.total_exec_time / 1000)::float8 AS total_seconds,
       (t.total_exec_time / nullif(t.calls, 0))::float8 AS mean_ms,
       t.rows,
       left(regexp_replace(t.query, '\s+', ' ', 'g'), 200) AS query
FROM totals
LEFT JOIN LATERAL (SELECT * FROM s ORDER BY total_exec_time DESC LIMIT 100) t ON true
LEFT JOIN pg_roles r ON r.oid = t.userid
LEFT JOIN pg_database d ON d.oid = t.dbid
ORDER BY t.total_exec_time DESC NULLS LAST
