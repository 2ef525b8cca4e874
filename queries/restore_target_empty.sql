/* dbtool: restore target empty? */
-- Relations outside the system schemas: restore only goes into a new or empty database.
SELECT count(*) AS n
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
