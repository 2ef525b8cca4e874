/* dbtool: migrate checksum of an applied migration */
SELECT checksum FROM dbtool.schema_migrations WHERE version = $1
