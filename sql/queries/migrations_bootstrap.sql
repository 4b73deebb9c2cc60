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
