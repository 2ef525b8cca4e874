/* dbtool archive: commit a transaction with an xid */
-- So the WAL insert position read next lies past every earlier batch's commit record.
BEGIN; SELECT pg_current_xact_id(); COMMIT
