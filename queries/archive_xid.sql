/* dbtool archive: the xid of a batch whose files go pending before it commits */
SELECT txid_current()::text AS xid
