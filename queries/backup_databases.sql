/* dbtool: databases to back up */
-- `dbtool backup --all`: every database that accepts connections, templates excepted.
SELECT datname
FROM pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
