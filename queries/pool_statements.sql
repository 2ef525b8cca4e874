/* dbtool: pool_statements */
-- Session-level features in the workload (they break under transaction pooling), and how many
-- statements carry $n parameters. dbtool's own statements are left out.
SELECT count(*) FILTER (WHERE query ~* '^\s*listen\s') AS listen,
       count(*) FILTER (WHERE query ~* 'pg_(try_)?advisory_lock(_shared)?\s*\(') AS advisory_locks,
       count(*) FILTER (WHERE query ~* '^\s*set\s' AND query !~* '^\s*set\s+local\s') AS session_set,
       count(*) FILTER (WHERE query ~* '^\s*prepare\s') AS prepare,
       count(*) FILTER (WHERE query ~* 'create\s+(global\s+|local\s+)?temp(orary)?\s+table') AS temp_tables,
       count(*) FILTER (WHERE query ~* 'with\s+hold') AS with_hold,
       count(*) FILTER (WHERE query ~ '\$[0-9]') AS parameterized
FROM pg_stat_statements
WHERE query !~ 'dbtool'
