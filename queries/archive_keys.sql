/* dbtool archive: unique keys usable to identify a row (primary key first, then unique NOT NULL) */
SELECT i.indisprimary AS primary_key,
       array_agg(a.attname::text ORDER BY k.ord) AS columns,
       bool_and(a.attnotnull) AS not_null
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::bigint::oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
GROUP BY i.indexrelid, i.indisprimary
ORDER BY i.indisprimary DESC, count(*), i.indexrelid
