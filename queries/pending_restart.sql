/* dbtool: pending_restart */
-- Settings changed in the configuration and reloaded that take effect only at a restart.
-- Superuser-only settings are listed only to pg_read_all_settings (part of pg_monitor).
SELECT name, setting, coalesce(unit, '') AS unit
FROM pg_settings
WHERE pending_restart
ORDER BY name
