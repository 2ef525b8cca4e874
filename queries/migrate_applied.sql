/* dbtool: migrate applied migrations */
SELECT version, name, checksum, applied_at::text AS applied_at
FROM dbtool.schema_migrations
ORDER BY version
