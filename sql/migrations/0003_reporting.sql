-- longrun migration 0003: reporting views for operators, analysts and DBAs.
--
-- Purpose: plain-SQL answers to the questions of operations (what runs, what waits and why,
-- what is stuck, what failed) and analysis (throughput, step durations). Each view reads the
-- tables as they are; none keeps data of its own.
-- Locks: creates views only.

CREATE VIEW __schema__.report_instances AS
SELECT process_id, version, status, count(*) AS instances,
       min(started_at) AS oldest_started, max(updated_at) AS last_change
FROM __schema__.instances
GROUP BY process_id, version, status;
COMMENT ON VIEW __schema__.report_instances IS
    'How many instances each process version has, by status, with the oldest start and the last change.';

CREATE VIEW __schema__.report_waiting AS
SELECT i.instance_id, i.process_id, i.business_key, i.current_step, 'message' AS waits_for,
       s.message_name || ' key ' || s.correlation_key AS detail, s.created_at AS since
FROM __schema__.instances i JOIN __schema__.subscriptions s USING (instance_id)
UNION ALL
SELECT i.instance_id, i.process_id, i.business_key, i.current_step, 'job',
       j.handler || CASE WHEN j.lease_owner IS NULL THEN ' (not claimed)' ELSE ' (held by ' || j.lease_owner || ')' END,
       j.created_at
FROM __schema__.instances i JOIN __schema__.jobs j USING (instance_id)
UNION ALL
SELECT i.instance_id, i.process_id, i.business_key, i.current_step, 'timer',
       t.kind || ' due ' || t.due_at, t.created_at
FROM __schema__.instances i JOIN __schema__.timers t USING (instance_id);
COMMENT ON VIEW __schema__.report_waiting IS
    'What each running instance waits for (a message and key, a job, a timer) and since when.';

CREATE VIEW __schema__.report_incidents AS
SELECT instance_id, process_id, version, business_key, current_step AS step,
       state->'incident'->>'error' AS error,
       (state->'incident'->>'attempts')::int AS attempts,
       (state->'incident'->>'at')::timestamptz AS since
FROM __schema__.instances
WHERE status = 'running' AND state ? 'incident';
COMMENT ON VIEW __schema__.report_incidents IS
    'Open incidents: running instances stopped at a step that ran out of attempts.';

CREATE VIEW __schema__.report_stuck AS
SELECT i.instance_id, i.process_id, i.version, i.business_key, i.current_step, i.updated_at
FROM __schema__.instances i
WHERE i.status = 'running'
  AND NOT (i.state ? 'incident') AND NOT (i.state ? 'paused')
  AND NOT EXISTS (SELECT 1 FROM __schema__.jobs j WHERE j.instance_id = i.instance_id)
  AND NOT EXISTS (SELECT 1 FROM __schema__.subscriptions s WHERE s.instance_id = i.instance_id)
  AND NOT EXISTS (SELECT 1 FROM __schema__.timers t WHERE t.instance_id = i.instance_id);
COMMENT ON VIEW __schema__.report_stuck IS
    'Running instances that nothing can move: no job, subscription or timer, no incident, not paused. Should be empty.';

CREATE VIEW __schema__.report_throughput AS
SELECT i.process_id, date_trunc('hour', e.recorded_at) AS hour,
       count(*) FILTER (WHERE e.event_type = 'InstanceStarted') AS started,
       count(*) FILTER (WHERE e.event_type = 'InstanceCompleted') AS completed,
       count(*) FILTER (WHERE e.event_type = 'InstanceCancelled') AS cancelled,
       count(*) FILTER (WHERE e.event_type = 'IncidentRaised') AS incidents
FROM __schema__.events e JOIN __schema__.instances i USING (instance_id)
WHERE e.event_type IN ('InstanceStarted', 'InstanceCompleted', 'InstanceCancelled', 'IncidentRaised')
GROUP BY i.process_id, date_trunc('hour', e.recorded_at);
COMMENT ON VIEW __schema__.report_throughput IS
    'Instances started, completed and cancelled, and incidents raised, per process and hour (engine clock).';

CREATE VIEW __schema__.report_step_durations AS
WITH waits AS (
    SELECT e.instance_id, e.data->>'step' AS step, e.event_type, e.recorded_at,
           lead(e.event_type) OVER w AS next_type, lead(e.recorded_at) OVER w AS next_at
    FROM __schema__.events e
    WHERE e.event_type IN ('JobCreated', 'JobCompleted', 'MessageAwaited', 'MessageCorrelated')
    WINDOW w AS (PARTITION BY e.instance_id, e.data->>'step' ORDER BY e.seq)
)
SELECT i.process_id, i.version, w.step, count(*) AS executions,
       avg(extract(epoch FROM w.next_at - w.recorded_at) * 1000)::numeric(14, 2) AS mean_ms,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM w.next_at - w.recorded_at) * 1000))::numeric(14, 2) AS p50_ms,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM w.next_at - w.recorded_at) * 1000))::numeric(14, 2) AS p95_ms,
       (max(extract(epoch FROM w.next_at - w.recorded_at)) * 1000)::numeric(14, 2) AS max_ms
FROM waits w JOIN __schema__.instances i USING (instance_id)
WHERE (w.event_type = 'JobCreated' AND w.next_type = 'JobCompleted')
   OR (w.event_type = 'MessageAwaited' AND w.next_type = 'MessageCorrelated')
GROUP BY i.process_id, i.version, w.step;
COMMENT ON VIEW __schema__.report_step_durations IS
    'How long service steps (job created to completed) and receive steps (wait to message) take, per process version: count, mean, p50, p95, max.';

CREATE VIEW __schema__.report_dead_letters AS
SELECT message_id, name, key, reason, received_at, processed_at
FROM __schema__.inbox WHERE status = 'dead';
COMMENT ON VIEW __schema__.report_dead_letters IS
    'Inbound messages nobody took, with the reason (unknown name, or expired while buffered).';
