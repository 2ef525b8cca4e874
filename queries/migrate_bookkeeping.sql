/* dbtool: migrate bookkeeping table */
-- Created in the same transaction as the first migration, so a crash leaves neither.
CREATE SCHEMA IF NOT EXISTS dbtool;
CREATE TABLE IF NOT EXISTS dbtool.schema_migrations (
    version    bigint      PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
