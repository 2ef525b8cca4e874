/* dbtool: extensions */
-- Extensions installed in the connected database, and whether their schema is on the
-- search_path (pg_stat_statements is read unqualified).
SELECT e.extname,
       e.extversion,
       n.nspname AS schemaname,
       n.nspname = ANY (current_schemas(false)) AS on_search_path
FROM pg_extension e
JOIN pg_namespace n ON n.oid = e.extnamespace
