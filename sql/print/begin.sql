-- longrun migrations applied by hand (`longrun migrate --print` or `--out`): one transaction,
-- without the session's statement timeout, under the same per-schema lock `longrun migrate`
-- takes, so two runs (or a run and an engine's migration) wait for each other.
BEGIN;
SET LOCAL statement_timeout = 0;
SELECT pg_advisory_xact_lock(hashtextextended('longrun.migrate:' || '__schema_name__', 0));
