/* dbtool: pool_statements */
-- Session-level features in the workload: they break under transaction pooling. Left out:
-- dbtool's own statements and the SETs PgBouncer itself sends to sync the parameters it
-- tracks per client (application_name, client_encoding, DateStyle, TimeZone,
-- standard_conforming_strings, IntervalStyle), which are safe.
SELECT count(*) FILTER (WHERE query ~* '^\s*listen\s') AS listen,
       count(*) FILTER (WHERE query ~* 'pg_(try_)?advisory_lock(_shared)?\s*\(') AS advisory_locks,
       count(*) FILTER (WHERE query ~* '^\s*set\s' AND query !~* '^\s*set\s+local\s'
         AND query !~* '^\s*set\s+(session\s+)?(application_name|client_encoding|datestyle|timezone|standard_conforming_strings|intervalstyle)\M')
         AS session_set,
       count(*) FILTER (WHERE query ~* '^\s*prepare\s') AS prepare,
       count(*) FILTER (WHERE query ~* 'create\s+(global\s+|local\s+)?temp(orary)?\s+table') AS temp_tables,
       count(*) FILTER (WHERE query ~* 'with\s+hold') AS with_hold
FROM pg_stat_statements
WHERE query !~ 'dbtool'
