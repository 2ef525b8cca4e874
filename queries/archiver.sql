/* dbtool: archiver */
-- WAL archiver statistics and the archive_status backlog (.ready files: segments waiting to
-- be archived). pg_ls_archive_statusdir() needs pg_monitor or superuser.
SELECT a.archived_count,
       a.failed_count,
       a.last_archived_wal,
       a.last_failed_wal,
       extract(epoch FROM now() - a.last_archived_time)::float8 AS last_archived_seconds,
       extract(epoch FROM now() - a.last_failed_time)::float8 AS last_failed_seconds,
       a.last_failed_time > coalesce(a.last_archived_time, '-infinity') AS failing,
       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready') AS ready_count
FROM pg_stat_archiver a
