/* dbtool archive: asynchronous commit for the source session */
-- Safe for the rows (a batch's DELETE and INSERT commit together); what the run reports is
-- made durable by archive_flush.sql before it is reported.
SET synchronous_commit = off
