/* dbtool: bloat_tables */
-- Estimated table bloat from planner statistics, no table scan: the well-known estimate of
-- ioguide/pgsql-bloat-estimation (after pgexperts): expected pages from reltuples and the
-- average tuple width in pg_stats, compared with relpages. Tables under 1 MB are skipped
-- (nothing to win there). is_na marks estimates that cannot be trusted (columns without
-- statistics, e.g. never analyzed or not readable by this role, or `name` columns);
-- stats_hidden says the role may not read them (pg_stats shows only columns it may SELECT,
-- and no statistics of a table under row-level security it is subject to).
SELECT current_database() AS datname, schemaname, tblname AS tablename,
       (bs * tblpages)::float8 AS real_bytes,
       CASE WHEN tblpages - est_tblpages_ff > 0 THEN ((tblpages - est_tblpages_ff) * bs)::float8 ELSE 0 END AS bloat_bytes,
       CASE WHEN tblpages > 0 AND tblpages - est_tblpages_ff > 0
            THEN ((tblpages - est_tblpages_ff) / tblpages::float8)::float8 ELSE 0 END AS bloat_share,
       is_na, stats_hidden
FROM (
  SELECT ceil(reltuples / ((bs - page_hdr) * fillfactor / (tpl_size * 100))) + ceil(toasttuples / 4) AS est_tblpages_ff,
         tblpages, bs, schemaname, tblname, is_na, stats_hidden
  FROM (
    SELECT (4 + tpl_hdr_size + tpl_data_size + (2 * ma)
            - CASE WHEN tpl_hdr_size % ma = 0 THEN ma ELSE tpl_hdr_size % ma END
            - CASE WHEN ceil(tpl_data_size)::int % ma = 0 THEN ma ELSE ceil(tpl_data_size)::int % ma END
           ) AS tpl_size,
           (heappages + toastpages) AS tblpages, reltuples, toasttuples, bs, page_hdr,
           schemaname, tblname, fillfactor, is_na, stats_hidden
    FROM (
      SELECT ns.nspname AS schemaname, tbl.relname AS tblname, greatest(tbl.reltuples, 0) AS reltuples,
             tbl.relpages AS heappages, coalesce(toast.relpages, 0) AS toastpages,
             greatest(coalesce(toast.reltuples, 0), 0) AS toasttuples,
             coalesce(substring(array_to_string(tbl.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint, 100) AS fillfactor,
             current_setting('block_size')::numeric AS bs,
             CASE WHEN version() ~ 'mingw32' OR version() ~ '64-bit|x86_64|ppc64|ia64|amd64|aarch64' THEN 8 ELSE 4 END AS ma,
             24 AS page_hdr,
             23 + CASE WHEN max(coalesce(s.null_frac, 0)) > 0 THEN (7 + count(s.attname)) / 8 ELSE 0::int END AS tpl_hdr_size,
             sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS tpl_data_size,
             bool_or(att.atttypid = 'pg_catalog.name'::regtype)
               OR sum(CASE WHEN att.attnum > 0 THEN 1 ELSE 0 END) <> count(s.attname) AS is_na,
             NOT bool_and(has_column_privilege(tbl.oid, att.attnum, 'SELECT')
                          AND (NOT tbl.relrowsecurity OR NOT row_security_active(tbl.oid))) AS stats_hidden
      -- The size filter runs first and each table's columns are then read through the
      -- (attrelid, attnum) index: OFFSET 0 keeps the planner, which cannot estimate the
      -- relpages filter, from hashing all of pg_attribute (every column of every table)
      -- instead; with 5,000 tables that was most of this query's time (scripts/bench-health).
      FROM (
        SELECT c.oid, c.relname, c.relnamespace, c.reltuples, c.relpages, c.reloptions,
               c.relrowsecurity, c.reltoastrelid
        FROM pg_class c
        WHERE c.relkind IN ('r', 'm')
          AND c.relpages >= (SELECT 1048576 / current_setting('block_size')::int)  -- once, not per row
        OFFSET 0
      ) tbl
      JOIN pg_namespace ns ON ns.oid = tbl.relnamespace
      CROSS JOIN LATERAL (
        SELECT a.attname, a.atttypid, a.attnum FROM pg_attribute a
        WHERE a.attrelid = tbl.oid AND NOT a.attisdropped AND a.attnum > 0
        OFFSET 0
      ) att
      -- OFFSET 0 keeps this a per-column lookup (index scans inside pg_stats) instead of
      -- reading the whole pg_stats view, every column of every table, before the size filter.
      LEFT JOIN LATERAL (
        SELECT s.null_frac, s.avg_width, s.attname FROM pg_stats s
        WHERE s.schemaname = ns.nspname AND s.tablename = tbl.relname
          AND s.inherited = false AND s.attname = att.attname
        OFFSET 0
      ) s ON true
      LEFT JOIN LATERAL (
        SELECT t.relpages, t.reltuples FROM pg_class t WHERE t.oid = tbl.reltoastrelid OFFSET 0
      ) toast ON true
      WHERE ns.nspname NOT IN ('pg_catalog', 'information_schema')
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
    ) s
  ) s2
) s3
