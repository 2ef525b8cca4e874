/* dbtool: pool_statements */
-- Statements that use a session-level feature (they break under transaction pooling), with
-- their calls so far, per user, database, queryid and feature. pool-advise reads this at both
-- ends of its window and judges only the calls made in between, by the pooled users on the
-- pooled databases: a pg_dump or a migration that ran before the window leaves no trace.
-- Left out: dbtool's own statements (by their /* dbtool comment: the ones with a session
-- feature carry it inside the statement too, as PostgreSQL 18 drops a leading one), SET LOCAL,
-- and the SETs PgBouncer itself sends to sync the parameters it tracks per client
-- (application_name, client_encoding, DateStyle, TimeZone, standard_conforming_strings,
-- IntervalStyle), which are safe.
SELECT usename, datname, queryid, feature, sum(calls)::float8 AS calls
FROM (
  SELECT r.rolname AS usename, d.datname, coalesce(s.queryid::text, md5(s.query)) AS queryid, s.calls,
         CASE
           WHEN s.query ~* '^\s*listen\s' THEN 'LISTEN'
           WHEN s.query ~* 'pg_(try_)?advisory_lock(_shared)?\s*\(' THEN 'session advisory locks'
           WHEN s.query ~* '^\s*set\s' AND s.query !~* '^\s*set\s+local\s'
             AND s.query !~* '^\s*set\s+(session\s+)?(application_name|client_encoding|datestyle|timezone|standard_conforming_strings|intervalstyle)\M'
             THEN 'SET'
           WHEN s.query ~* '^\s*prepare\s' THEN 'PREPARE'
           WHEN s.query ~* 'create\s+(global\s+|local\s+)?temp(orary)?\s+table' THEN 'temporary tables'
           WHEN s.query ~* 'with\s+hold' THEN 'WITH HOLD cursors'
         END AS feature
  FROM pg_stat_statements s
  JOIN pg_roles r ON r.oid = s.userid
  JOIN pg_database d ON d.oid = s.dbid
  WHERE s.query !~ '/\*\s*dbtool'
) f
WHERE feature IS NOT NULL
GROUP BY usename, datname, queryid, feature
