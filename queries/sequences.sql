/* dbtool: sequences */
-- Every sequence of the connected database with the limit it will really hit: its own
-- max/min, or the range of the column it feeds when that is narrower (a bigint sequence
-- owned by an int column fails at 2^31-1). Serial columns own their sequence (deptype 'a'),
-- identity columns too (deptype 'i'). last_value needs SELECT or USAGE on the sequence, as in
-- pg_sequences; NULL when the sequence has never been used.
SELECT current_database() AS datname,
       n.nspname AS schemaname,
       c.relname AS sequencename,
       format_type(s.seqtypid, NULL) AS data_type,
       s.seqincrement AS increment_by,
       s.seqmin AS min_value,
       s.seqmax AS max_value,
       s.seqcycle AS cycle,
       has_sequence_privilege(c.oid, 'SELECT,USAGE') AS visible,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE') THEN pg_sequence_last_value(c.oid) END AS last_value,
       o.table_name,
       o.column_name,
       o.column_type,
       o.is_identity,
       o.column_max,
       o.column_min
FROM pg_sequence s
JOIN pg_class c ON c.oid = s.seqrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT tn.nspname || '.' || t.relname AS table_name,
           a.attname AS column_name,
           format_type(a.atttypid, NULL) AS column_type,
           d.deptype = 'i' AS is_identity,
           CASE a.atttypid WHEN 'int2'::regtype THEN 32767 WHEN 'int4'::regtype THEN 2147483647 END AS column_max,
           CASE a.atttypid WHEN 'int2'::regtype THEN -32768 WHEN 'int4'::regtype THEN -2147483648 END AS column_min
    FROM pg_depend d
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace tn ON tn.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LIMIT 1
) o ON true
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
