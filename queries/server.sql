/* dbtool: server */
-- Who this server is: version, start time, recovery state, configuration reload time.
SELECT version() AS version,
       current_setting('server_version_num')::int AS version_num,
       extract(epoch FROM pg_postmaster_start_time())::float8 AS start_time,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime_seconds,
       pg_is_in_recovery() AS in_recovery,
       extract(epoch FROM now() - pg_conf_load_time())::float8 AS conf_age_seconds
