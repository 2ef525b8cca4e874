/* dbtool archive: is there a valid index whose first column is the time column? */
SELECT EXISTS (
  SELECT 1 FROM pg_index i
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = $1::bigint::oid AND i.indisvalid AND i.indpred IS NULL AND a.attname = $2
) AS indexed
