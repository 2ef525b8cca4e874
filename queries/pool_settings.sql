/* dbtool: pool_settings */
-- Connection limits pool-advise sizes against; reserved_connections exists on 16+ only.
SELECT current_setting('server_version_num')::int AS server_version_num,
       current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + coalesce((SELECT setting::int FROM pg_settings WHERE name = 'reserved_connections'), 0)
         AS reserved_connections
