/* dbtool: bloat_indexes */
-- Estimated B-tree index bloat from planner statistics, no index scan: the well-known
-- estimate of ioguide/pgsql-bloat-estimation (after pgexperts). Indexes under 1 MB are skipped.
-- stats_hidden: the role may not read the table's statistics (see bloat_tables.sql).
SELECT current_database() AS datname, nspname AS schemaname, tblname AS tablename, idxname AS indexname,
       (bs * relpages)::float8 AS real_bytes,
       CASE WHEN relpages > est_pages_ff THEN (bs * (relpages - est_pages_ff))::float8 ELSE 0 END AS bloat_bytes,
       CASE WHEN relpages > est_pages_ff THEN ((relpages - est_pages_ff)::float8 / relpages)::float8 ELSE 0 END AS bloat_share,
       is_na, stats_hidden
FROM (
  SELECT coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor / (100 * (4 + nulldatahdrwidth)::float8))), 0) AS est_pages_ff,
         bs, nspname, tblname, idxname, relpages, is_na, stats_hidden
  FROM (
    SELECT bs, nspname, tblname, idxname, reltuples, relpages, fillfactor, pagehdr, pageopqdata, is_na, stats_hidden,
           (index_tuple_hdr_bm + maxalign
              - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign ELSE index_tuple_hdr_bm % maxalign END
              + nulldatawidth + maxalign
              - CASE WHEN nulldatawidth = 0 THEN 0
                     WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                     ELSE nulldatawidth::integer % maxalign END
           )::numeric AS nulldatahdrwidth
    FROM (
      SELECT n.nspname, i.tblname, i.idxname, i.reltuples, i.relpages, i.fillfactor,
             current_setting('block_size')::numeric AS bs,
             CASE WHEN version() ~ 'mingw32' OR version() ~ '64-bit|x86_64|ppc64|ia64|amd64|aarch64' THEN 8 ELSE 4 END AS maxalign,
             24 AS pagehdr,
             16 AS pageopqdata,
             CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8 ELSE 8 + ((32 + 8 - 1) / 8) END AS index_tuple_hdr_bm,
             sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS nulldatawidth,
             max(CASE WHEN i.atttypid = 'pg_catalog.name'::regtype THEN 1 ELSE 0 END) > 0
               OR count(s.attname) < count(*) AS is_na,
             NOT bool_and(has_table_privilege(i.tbloid, 'SELECT')
                          AND (NOT i.relrowsecurity OR NOT row_security_active(i.tbloid))) AS stats_hidden
      FROM (
        SELECT ct.relname AS tblname, ct.relnamespace, ct.oid AS tbloid, ct.relrowsecurity, ic.idxname, ic.reltuples, ic.relpages, ic.fillfactor,
               coalesce(a1.attname, a2.attname) AS attname,
               coalesce(a1.atttypid, a2.atttypid) AS atttypid,
               CASE WHEN a1.attnum IS NULL THEN ic.idxname ELSE ct.relname END AS attrelname
        FROM (
          SELECT ci.relname AS idxname, greatest(ci.reltuples, 0) AS reltuples, ci.relpages, x.indrelid AS tbloid,
                 x.indexrelid AS idxoid,
                 coalesce(substring(array_to_string(ci.reloptions, ' ') FROM 'fillfactor=([0-9]+)')::smallint, 90) AS fillfactor,
                 string_to_array(textin(int2vectorout(x.indkey)), ' ')::int[] AS indkey,
                 generate_series(1, x.indnatts) AS attpos
          FROM pg_index x
          JOIN pg_class ci ON ci.oid = x.indexrelid
          JOIN pg_am am ON am.oid = ci.relam AND am.amname = 'btree'
          WHERE ci.relpages >= (SELECT 1048576 / current_setting('block_size')::int)  -- once, not per row
          -- OFFSET 0 here and below: the size filter runs first and the few indexes left
          -- find their table by oid, instead of a hash over all of pg_class (the planner
          -- cannot estimate the relpages filter).
          OFFSET 0
        ) ic
        CROSS JOIN LATERAL (
          SELECT c.relname, c.relnamespace, c.oid, c.relrowsecurity FROM pg_class c
          WHERE c.oid = ic.tbloid OFFSET 0
        ) ct
        LEFT JOIN LATERAL (
          SELECT a.attname, a.atttypid, a.attnum FROM pg_attribute a
          WHERE ic.indkey[ic.attpos] <> 0 AND a.attrelid = ic.tbloid AND a.attnum = ic.indkey[ic.attpos] OFFSET 0
        ) a1 ON true
        LEFT JOIN LATERAL (
          SELECT a.attname, a.atttypid FROM pg_attribute a
          WHERE ic.indkey[ic.attpos] = 0 AND a.attrelid = ic.idxoid AND a.attnum = ic.attpos OFFSET 0
        ) a2 ON true
      ) i
      JOIN pg_namespace n ON n.oid = i.relnamespace
      -- OFFSET 0 keeps this a per-column lookup (index scans inside pg_stats) instead of
      -- reading the whole pg_stats view, every column of every table, before the size filter.
      LEFT JOIN LATERAL (
        SELECT s.null_frac, s.avg_width, s.attname FROM pg_stats s
        WHERE s.schemaname = n.nspname AND s.tablename = i.attrelname AND s.attname = i.attname
        OFFSET 0
      ) s ON true
      WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
      GROUP BY 1, 2, 3, 4, 5, 6
    ) rows_data_stats
  ) rows_hdr_pdg_stats
) relation_stats
