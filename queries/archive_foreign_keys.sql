/* dbtool archive: foreign keys that refer to a table (its children), with their columns in order */
SELECT c.conname::text AS name,
       n.nspname::text AS child_schema,
       r.relname::text AS child_table,
       c.confdeltype::text AS on_delete,
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.ord) AS parent_columns
FROM pg_constraint c
JOIN pg_class r ON r.oid = c.conrelid
JOIN pg_namespace n ON n.oid = r.relnamespace
WHERE c.contype = 'f' AND c.confrelid = $1::bigint::oid AND c.conparentid = 0
ORDER BY n.nspname, r.relname, c.conname
