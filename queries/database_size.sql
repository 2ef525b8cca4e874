/* dbtool: database_size */
-- Size of the connected database estimated from pg_class.relpages (as of each relation's
-- last VACUUM/ANALYZE): one catalog read, where pg_database_size() would stat every file.
SELECT current_database() AS datname,
       sum(relpages::bigint)::float8 * current_setting('block_size')::float8 AS size_bytes
FROM pg_class
WHERE relkind IN ('r', 'i', 't', 'm')
