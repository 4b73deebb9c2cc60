-- longrun migration 0006: a read-only role for reporting.
--
-- Purpose: analysts and dashboards read the `report_*` views and nothing else. The reporting
-- role (`longrun_reporting` unless configured; NOLOGIN: grant it to login roles,
-- `GRANT longrun_reporting TO alice`)
-- gets USAGE on the schema and SELECT on each view; the views run with their owner's rights,
-- so the role needs, and has, no right on any table. Roles are shared by every schema of the
-- cluster: the role is created once and granted the views of each schema migrated.
-- Requires: the migrating role may create roles (CREATEROLE), or the reporting role exists.
-- Locks: none on longrun's tables.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '__reporting_role_name__') THEN
        CREATE ROLE __reporting_role__ NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created meanwhile by a migration of another schema
END
$$;

GRANT USAGE ON SCHEMA __schema__ TO __reporting_role__;
GRANT SELECT ON
    __schema__.report_instances, __schema__.report_waiting, __schema__.report_incidents,
    __schema__.report_stuck, __schema__.report_throughput, __schema__.report_step_durations,
    __schema__.report_activity, __schema__.report_old_instances, __schema__.report_dead_letters
TO __reporting_role__;
