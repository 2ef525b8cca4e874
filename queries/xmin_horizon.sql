/* dbtool: xmin_horizon */
-- What holds the xmin horizon back (VACUUM cannot remove rows deleted after it): the oldest
-- sessions by backend_xid/backend_xmin, prepared transactions, replication slots' xmin and
-- catalog_xmin, and standbys' hot_standby_feedback (pg_stat_replication.backend_xmin).
-- At most 5 of each kind, oldest first; walsenders are counted as standbys, not sessions,
-- and dbtool's own session is left out. For slots, the state column carries the slot type.
-- Other roles' backend_xmin is visible with pg_read_all_stats (pg_monitor).
WITH sessions AS (
    SELECT 'session'::text AS holder,
           pid::text AS name,
           coalesce(usename, '') AS usename,
           coalesce(application_name, '') AS application_name,
           coalesce(datname, '') AS datname,
           state,
           greatest(age(backend_xid), age(backend_xmin))::float8 AS age_xids,
           extract(epoch FROM now() - xact_start)::float8 AS age_seconds,
           left(query, 200) AS query,
           NULL::bool AS active
    FROM pg_stat_activity
    WHERE (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL)
      AND pid <> pg_backend_pid()
      AND backend_type IS DISTINCT FROM 'walsender'
    ORDER BY age_xids DESC
    LIMIT 5
), prepared AS (
    SELECT 'prepared_xact'::text, gid, owner, '', database, NULL::text,
           age(transaction)::float8,
           extract(epoch FROM now() - prepared)::float8,
           NULL::text, NULL::bool
    FROM pg_prepared_xacts
    ORDER BY 7 DESC
    LIMIT 5
), slots AS (
    SELECT 'slot'::text, slot_name::text, '', '', coalesce(database::text, ''), slot_type,
           greatest(age(xmin), age(catalog_xmin))::float8,
           NULL::float8, NULL::text, active
    FROM pg_replication_slots
    WHERE xmin IS NOT NULL OR catalog_xmin IS NOT NULL
    ORDER BY 7 DESC
    LIMIT 5
), standbys AS (
    SELECT 'standby'::text, coalesce(application_name, '') || coalesce(' (' || host(client_addr) || ')', ''),
           coalesce(usename::text, ''), coalesce(application_name, ''), '', state,
           age(backend_xmin)::float8,
           NULL::float8, NULL::text, NULL::bool
    FROM pg_stat_replication
    WHERE backend_xmin IS NOT NULL
    ORDER BY 7 DESC
    LIMIT 5
)
SELECT * FROM sessions
UNION ALL SELECT * FROM prepared
UNION ALL SELECT * FROM slots
UNION ALL SELECT * FROM standbys
