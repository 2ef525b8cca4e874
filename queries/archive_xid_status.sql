/* dbtool archive: did the transaction of a batch whose files were pending commit? (NULL: too old to know) */
SELECT txid_status($1::text::bigint)::text AS status
