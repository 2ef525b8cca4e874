/* dbtool: connection slots free for parallel pg_dump / pg_restore */
-- max_connections counts client backends only (autovacuum, WAL senders and background workers
-- have slots of their own). superuser_reserved_connections and, from 16 on,
-- reserved_connections are kept for administrators: a backup must not use them up.
-- Role and database CONNECTION LIMITs bind the login role, except a superuser.
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int AS superuser_reserved,
       coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS in_use,
       (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) AS superuser,
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = session_user) AS role_limit,
       (SELECT count(*) FROM pg_stat_activity
         WHERE usename = session_user AND backend_type = 'client backend') AS role_in_use,
       (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS db_limit,
       (SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND backend_type = 'client backend') AS db_in_use
