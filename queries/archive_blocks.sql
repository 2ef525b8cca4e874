/* dbtool archive: table size in blocks */
-- NULL when the table was dropped meanwhile: read as an error, not as 0 blocks.
SELECT pg_relation_size($1::bigint::oid) / current_setting('block_size')::bigint AS blocks
