/* dbtool archive: WAL flushed up to $1 */
SELECT pg_current_wal_flush_lsn() >= $1::text::pg_lsn AS flushed
