/* dbtool archive: make the asynchronous batch commits durable */
-- A synchronously committed transaction that writes WAL: its flush covers every earlier
-- commit. Needs the privilege to emit a logical message; without it dbtool waits for the WAL writer.
BEGIN; SET LOCAL synchronous_commit = on;
SELECT pg_logical_emit_message(true, 'dbtool', 'archive: flush'); COMMIT
