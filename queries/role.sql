/* dbtool: role */
-- What the connected role may see: without pg_read_all_stats, pg_stat_activity hides other
-- roles' sessions (state, wait events, backend_xmin); without pg_read_all_settings,
-- superuser-only settings. Both come with pg_monitor (and a superuser has them).
SELECT current_user AS role_name,
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS read_all_stats,
       pg_has_role(current_user, 'pg_read_all_settings', 'USAGE') AS read_all_settings
