/* dbtool archive: columns in order, with their types as SQL spells them */
SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
       a.attnotnull AS not_null, a.attgenerated::text <> '' AS generated,
       a.atthasdef AS has_default, a.attidentity::text <> '' AS identity
FROM pg_attribute a
WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
