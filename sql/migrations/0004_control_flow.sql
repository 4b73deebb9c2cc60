-- longrun migration 0004: reporting for parallel branches and call activities.
--
-- Purpose: an instance may now wait in several branches at once, with an incident in each, and
-- may wait for a child instance (a call activity). The instance state keeps its open incidents
-- as a list (`state->'incidents'`; states written before this version hold one, as
-- `state->'incident'`, and are read either way).
-- Locks: replaces two views; no table is touched.

CREATE OR REPLACE VIEW __schema__.report_incidents AS
SELECT i.instance_id, i.process_id, i.version, i.business_key, inc->>'step' AS step,
       inc->>'error' AS error, (inc->>'attempts')::int AS attempts,
       (inc->>'at')::timestamptz AS since
FROM __schema__.instances i
CROSS JOIN LATERAL jsonb_array_elements(
    CASE WHEN i.state ? 'incidents' THEN i.state->'incidents'
         ELSE jsonb_build_array(i.state->'incident') END) AS inc
WHERE i.status = 'running' AND (i.state ? 'incidents' OR i.state ? 'incident');
COMMENT ON VIEW __schema__.report_incidents IS
    'Open incidents: one row per step of a running instance that ran out of attempts.';

CREATE OR REPLACE VIEW __schema__.report_stuck AS
SELECT i.instance_id, i.process_id, i.version, i.business_key, i.current_step, i.updated_at
FROM __schema__.instances i
WHERE i.status = 'running'
  AND NOT (i.state ? 'incident') AND NOT (i.state ? 'incidents') AND NOT (i.state ? 'paused')
  AND NOT (coalesce(i.state->'waits', '[]') @> '[{"for": "child"}]')
  AND NOT EXISTS (SELECT 1 FROM __schema__.jobs j WHERE j.instance_id = i.instance_id)
  AND NOT EXISTS (SELECT 1 FROM __schema__.subscriptions s WHERE s.instance_id = i.instance_id)
  AND NOT EXISTS (SELECT 1 FROM __schema__.timers t WHERE t.instance_id = i.instance_id);
COMMENT ON VIEW __schema__.report_stuck IS
    'Running instances that nothing can move: no job, subscription, timer or child instance, no incident, not paused. Should be empty.';
