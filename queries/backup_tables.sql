/* dbtool: backup table estimates */
-- Row estimates of every user table when the dump starts, for the manifest and `restore --check`.
-- reltuples is -1 for a table never vacuumed or analyzed on 14+ (0 before 14).
SELECT n.nspname AS schema,
       c.relname AS name,
       c.reltuples::bigint AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm')
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\_%'
ORDER BY 1, 2
