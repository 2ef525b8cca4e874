/* dbtool: server start */
-- A scheduled job's kept check results belong to one life of the server: a restart drops them.
SELECT pg_postmaster_start_time()::text AS started
