/* dbtool: autovacuum_workers */
-- Autovacuum workers at work against autovacuum_max_workers: all of them busy for long means
-- vacuum cannot keep up. Anti-wraparound autovacuums say so in their query text.
SELECT count(*) FILTER (WHERE backend_type = 'autovacuum worker')::float8 AS busy,
       count(*) FILTER (WHERE backend_type = 'autovacuum worker'
                          AND query LIKE '%(to prevent wraparound)%')::float8 AS wraparound,
       current_setting('autovacuum_max_workers')::float8 AS max_workers
FROM pg_stat_activity
