/* dbtool archive: the table, its size and row estimate */
SELECT c.oid::bigint AS oid, c.relkind::text AS relkind, c.relpages::bigint AS relpages,
       c.reltuples::float8 AS reltuples,
       (pg_relation_size(c.oid) / current_setting('block_size')::bigint) AS blocks
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
