/* dbtool: locks */
-- Lock counts by database and mode; cheap (no per-backend function calls).
SELECT coalesce(d.datname, '') AS datname, l.mode, l.granted, count(*) AS n
FROM pg_locks l
LEFT JOIN pg_database d ON d.oid = l.database
GROUP BY 1, 2, 3
