/* dbtool: advisory unlock */
-- The marker is repeated inside the statement: PostgreSQL 18's pg_stat_statements drops a
-- leading comment, and pool-advise leaves dbtool's own statements out by it (pool_statements.sql).
-- Released explicitly before the session ends: the server ends a session some moments after
-- its client goes, and a run started right after must not find the lock still held.
SELECT /* dbtool */ pg_advisory_unlock($1::bigint) AS released
