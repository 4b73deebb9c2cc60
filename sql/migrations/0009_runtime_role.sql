-- longrun migration 0009: a least-privilege role for the engines.
--
-- Purpose: engines need to read and write longrun's rows, nothing more. `longrun_runtime`
-- (NOLOGIN: grant it to the engines' login role, `GRANT longrun_runtime TO orders_service`)
-- gets USAGE on this schema and SELECT, INSERT, UPDATE, DELETE on its tables (and the identity
-- sequences behind them), and the same on tables later migrations create. It gets no
-- TRUNCATE, no CREATE on the schema, no right on any other schema's tables: it cannot change
-- the schema or read other applications' data. Migrations run as the owner role (whoever
-- runs `longrun migrate`, e.g. a `longrun_owner` role), never as the runtime role.
-- Requires: the migrating role may create roles (CREATEROLE), or `longrun_runtime` exists.
-- Locks: none on longrun's tables.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'longrun_runtime') THEN
        CREATE ROLE longrun_runtime NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by a migration of another schema
END
$$;

GRANT USAGE ON SCHEMA __schema__ TO longrun_runtime;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA __schema__ TO longrun_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA __schema__ TO longrun_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA __schema__
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO longrun_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA __schema__
    GRANT USAGE, SELECT ON SEQUENCES TO longrun_runtime;
