-- Creates the schema and the migration ledger if they are missing (run under migrations_lock).
CREATE SCHEMA IF NOT EXISTS __schema__;
CREATE TABLE IF NOT EXISTS __schema__.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE __schema__.schema_migrations IS
    'Migrations applied to this schema, with the SHA-256 of the file that ran; a changed file is refused.';
COMMENT ON COLUMN __schema__.schema_migrations.version IS 'The migration number (the file sql/migrations/NNNN_name.sql).';
COMMENT ON COLUMN __schema__.schema_migrations.name IS 'The file name without .sql, e.g. 0001_core.';
COMMENT ON COLUMN __schema__.schema_migrations.checksum IS 'SHA-256 (hex) of the file as shipped, before the schema name is filled in.';
COMMENT ON COLUMN __schema__.schema_migrations.applied_at IS 'When it was applied (database clock).';
