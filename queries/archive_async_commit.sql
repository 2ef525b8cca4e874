/* dbtool archive: asynchronous commit for the source session */
-- The marker is repeated inside the statement: PostgreSQL 18's pg_stat_statements drops a
-- leading comment, and pool-advise leaves dbtool's own statements out by it (pool_statements.sql).
-- Safe for the rows (a batch's DELETE and INSERT commit together); what the run reports is
-- made durable by archive_flush.sql before it is reported.
SET /* dbtool */ synchronous_commit = off
