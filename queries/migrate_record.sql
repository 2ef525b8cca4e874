/* dbtool: migrate record an applied migration */
INSERT INTO dbtool.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)
