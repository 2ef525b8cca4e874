/* dbtool: migrate has the bookkeeping table */
SELECT to_regclass('dbtool.schema_migrations') IS NOT NULL AS present
