/* dbtool: checksum_failures */
-- Data checksum failures per database (pg_stat_database, 12+); NULL when data checksums are
-- off. The row without a database (shared catalogs) is named "(shared)".
SELECT coalesce(datname, '(shared)') AS datname,
       checksum_failures::float8 AS checksum_failures,
       extract(epoch FROM now() - checksum_last_failure)::float8 AS last_failure_seconds
FROM pg_stat_database
WHERE checksum_failures IS NOT NULL
