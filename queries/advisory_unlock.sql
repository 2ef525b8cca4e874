/* dbtool: advisory unlock */
-- Released explicitly before the session ends: the server ends a session some moments after
-- its client goes, and a run started right after must not find the lock still held.
SELECT pg_advisory_unlock($1::bigint) AS released
