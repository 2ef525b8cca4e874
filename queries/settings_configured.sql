/* dbtool: settings_configured */
-- The settings the server runs with from its configuration (files, ALTER SYSTEM, the command
-- line, the environment), for --state to tell what changed since the previous run. Defaults
-- and what applies to dbtool's session only (ALTER ROLE/DATABASE SET, client, session) are
-- left out. A setting that may hold a secret (a password in primary_conninfo, a passphrase
-- command) is reduced to a fingerprint here, so its value reaches neither dbtool nor its state
-- file. Superuser-only settings are listed only to pg_read_all_settings (part of pg_monitor).
SELECT name,
       CASE WHEN name ~ '(conninfo|password|passphrase|secret|key)'
            THEN 'fingerprint ' || left(encode(sha256(convert_to(setting, 'UTF8')), 'hex'), 12)
            ELSE setting || coalesce(' ' || nullif(unit, ''), '')
       END AS value
FROM pg_settings
WHERE source IN ('configuration file', 'command line', 'environment variable', 'global')
ORDER BY name
