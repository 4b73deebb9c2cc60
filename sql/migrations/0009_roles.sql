-- longrun migration 0009: least privilege: an owner role and a runtime role.
--
-- Purpose: engines need to read and write longrun's rows, nothing more, and nobody should run
-- them as the owner of the schema. The owner role (`longrun_owner` unless configured) takes
-- over the schema and everything in it; the migrating role is made a member, and later
-- migrations run as the owner (`SET LOCAL ROLE`), so everything keeps one owner. The runtime
-- role (`longrun_runtime` unless configured) gets USAGE on the schema, SELECT, INSERT, UPDATE,
-- DELETE on its tables (and their identity sequences; also on tables later migrations
-- create) and SELECT on its views; no TRUNCATE, no CREATE, nothing in other schemas. Both are NOLOGIN: grant the
-- runtime role to the engines' login role (`GRANT longrun_runtime TO orders_service`) and the
-- owner role to whoever migrates.
-- Requires: the migrating role may create roles (CREATEROLE) or the roles exist, and it may
-- hand its objects to the owner role.
-- Locks: ACCESS EXCLUSIVE on each table for a moment (ALTER ... OWNER); run it quietly.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '__owner_role_name__') THEN
        CREATE ROLE __owner_role__ NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by a migration of another schema
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '__runtime_role_name__') THEN
        CREATE ROLE __runtime_role__ NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The migrating role keeps the right to migrate, as a member of the owner role.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, '__owner_role_name__', 'MEMBER') THEN
        EXECUTE 'GRANT __owner_role__ TO ' || quote_ident(current_user);
    END IF;
END
$$;

-- The owner role takes the schema, its tables (with their identity sequences) and views; the
-- runtime role gets the rows of the tables and reads the views, nothing else.
ALTER SCHEMA __schema__ OWNER TO __owner_role__;
GRANT USAGE ON SCHEMA __schema__ TO __runtime_role__;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.relname, c.relkind = 'v' AS is_view FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = '__schema_name__' AND c.relkind IN ('r', 'v', 'p')
    LOOP
        EXECUTE format('ALTER %s %I.%I OWNER TO %I',
                       CASE WHEN r.is_view THEN 'VIEW' ELSE 'TABLE' END,
                       '__schema_name__', r.relname, '__owner_role_name__');
        EXECUTE format('GRANT %s ON %I.%I TO %I',
                       CASE WHEN r.is_view THEN 'SELECT' ELSE 'SELECT, INSERT, UPDATE, DELETE' END,
                       '__schema_name__', r.relname, '__runtime_role_name__');
    END LOOP;
END
$$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA __schema__ TO __runtime_role__;
ALTER DEFAULT PRIVILEGES FOR ROLE __owner_role__ IN SCHEMA __schema__
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO __runtime_role__;
ALTER DEFAULT PRIVILEGES FOR ROLE __owner_role__ IN SCHEMA __schema__
    GRANT USAGE, SELECT ON SEQUENCES TO __runtime_role__;
