-- Coarse-grained central monitoring across contexts. Each context publishes its milestones on
-- the outbox topic `longrun.milestones`; a monitor (any longrun schema acting as the central
-- one) reads them from every context with a checkpoint per source and keeps them here, by
-- trace key. End-to-end flows name their stages by milestone; the views below count the
-- traces at each stage, measure stage-to-stage durations and list the stuck ones.
CREATE TABLE __schema__.monitor_milestones (
    context      text        NOT NULL,
    message_id   uuid        NOT NULL,
    trace_key    text        NOT NULL,
    traceparent  text,
    process_id   text        NOT NULL,
    instance_id  uuid        NOT NULL,
    business_key text        NOT NULL,
    step_id      text        NOT NULL,
    milestone    text        NOT NULL,
    reached_at   timestamptz NOT NULL,
    seq          bigint      NOT NULL,
    PRIMARY KEY (context, message_id)
);
CREATE INDEX monitor_milestones_trace ON __schema__.monitor_milestones (trace_key, reached_at);
CREATE INDEX monitor_milestones_milestone ON __schema__.monitor_milestones (milestone, trace_key);
COMMENT ON TABLE __schema__.monitor_milestones IS
    'Milestones reached in every monitored context, one row per published milestone message (a redelivery is the same row): the end-to-end timeline of each trace.';
COMMENT ON COLUMN __schema__.monitor_milestones.context IS 'The context (source schema) that reached it, as the monitor names it.';
COMMENT ON COLUMN __schema__.monitor_milestones.message_id IS 'The id of the outbox message that published it (unique within its context).';
COMMENT ON COLUMN __schema__.monitor_milestones.trace_key IS 'The trace it belongs to, e.g. the order id: what the timeline is searched by.';
COMMENT ON COLUMN __schema__.monitor_milestones.traceparent IS 'The W3C trace context of the instance that reached it.';
COMMENT ON COLUMN __schema__.monitor_milestones.process_id IS 'The process of the instance that reached it.';
COMMENT ON COLUMN __schema__.monitor_milestones.instance_id IS 'The instance that reached it (in its context).';
COMMENT ON COLUMN __schema__.monitor_milestones.business_key IS 'That instance''s business key.';
COMMENT ON COLUMN __schema__.monitor_milestones.step_id IS 'The step marked as the milestone.';
COMMENT ON COLUMN __schema__.monitor_milestones.milestone IS 'The milestone''s name, e.g. paid.';
COMMENT ON COLUMN __schema__.monitor_milestones.reached_at IS 'When it was reached (the context''s engine clock).';
COMMENT ON COLUMN __schema__.monitor_milestones.seq IS 'The sequence number of the event that reached it in its instance''s stream: the order of one instance''s milestones reached at the same time.';

CREATE TABLE __schema__.monitor_flows (
    flow          text    NOT NULL,
    position      integer NOT NULL CHECK (position >= 0),
    milestone     text    NOT NULL,
    limit_seconds bigint  CHECK (limit_seconds > 0),
    PRIMARY KEY (flow, position),
    UNIQUE (flow, milestone)
);
COMMENT ON TABLE __schema__.monitor_flows IS
    'End-to-end flows and their stages, in order: each stage is a milestone, with how long a trace may stay there before it counts as stuck.';
COMMENT ON COLUMN __schema__.monitor_flows.flow IS 'The flow''s name, e.g. order.';
COMMENT ON COLUMN __schema__.monitor_flows.position IS 'The stage''s place in the flow, from 0.';
COMMENT ON COLUMN __schema__.monitor_flows.milestone IS 'The milestone that marks the stage.';
COMMENT ON COLUMN __schema__.monitor_flows.limit_seconds IS 'How long a trace may stay at this stage before it is stuck; null: no limit (a last stage never is).';

-- Per trace and flow: the furthest stage reached, and when.
CREATE VIEW __schema__.monitor_trace_stages AS
SELECT DISTINCT ON (f.flow, m.trace_key)
       f.flow, m.trace_key, f.position, f.milestone, m.reached_at, m.context
FROM __schema__.monitor_milestones m
JOIN __schema__.monitor_flows f ON f.milestone = m.milestone
ORDER BY f.flow, m.trace_key, f.position DESC, m.reached_at;

-- How many traces are at each stage now (their furthest stage reached).
CREATE VIEW __schema__.report_flow_stages AS
SELECT f.flow, f.position, f.milestone, count(t.trace_key) AS traces,
       min(t.reached_at) AS oldest_reached_at
FROM __schema__.monitor_flows f
LEFT JOIN __schema__.monitor_trace_stages t ON t.flow = f.flow AND t.position = f.position
GROUP BY f.flow, f.position, f.milestone
ORDER BY f.flow, f.position;

-- From each stage to the next: how many traces made that step, and how long it took them.
CREATE VIEW __schema__.report_flow_durations AS
WITH firsts AS (
    SELECT f.flow, f.position, m.trace_key, min(m.reached_at) AS reached_at
    FROM __schema__.monitor_milestones m
    JOIN __schema__.monitor_flows f ON f.milestone = m.milestone
    GROUP BY f.flow, f.position, m.trace_key
)
SELECT a.flow, fa.milestone AS from_milestone, fb.milestone AS to_milestone,
       count(*) AS traces,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM b.reached_at - a.reached_at)) AS p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM b.reached_at - a.reached_at)) AS p95_seconds
FROM firsts a
JOIN firsts b ON b.flow = a.flow AND b.trace_key = a.trace_key AND b.position = a.position + 1
JOIN __schema__.monitor_flows fa ON fa.flow = a.flow AND fa.position = a.position
JOIN __schema__.monitor_flows fb ON fb.flow = b.flow AND fb.position = b.position
GROUP BY a.flow, a.position, fa.milestone, fb.milestone
ORDER BY a.flow, a.position;

-- Traces at a stage (not the last) longer than its limit.
CREATE VIEW __schema__.report_flow_stuck AS
SELECT t.flow, t.trace_key, t.milestone, t.context, t.reached_at,
       extract(epoch FROM now() - t.reached_at)::bigint AS waiting_seconds,
       f.limit_seconds
FROM __schema__.monitor_trace_stages t
JOIN __schema__.monitor_flows f ON f.flow = t.flow AND f.position = t.position
WHERE f.limit_seconds IS NOT NULL
  AND t.position < (SELECT max(position) FROM __schema__.monitor_flows l WHERE l.flow = t.flow)
  AND t.reached_at < now() - make_interval(secs => f.limit_seconds)
ORDER BY t.reached_at;

-- Every milestone of every trace, in order: the end-to-end timeline.
CREATE VIEW __schema__.report_flow_timeline AS
SELECT trace_key, reached_at, context, process_id, instance_id, step_id, milestone
FROM __schema__.monitor_milestones
ORDER BY trace_key, reached_at, context, instance_id, seq;

GRANT SELECT, INSERT, UPDATE, DELETE ON __schema__.monitor_milestones, __schema__.monitor_flows
    TO __runtime_role__;
GRANT SELECT ON __schema__.monitor_trace_stages TO __runtime_role__;
GRANT SELECT ON __schema__.report_flow_stages, __schema__.report_flow_durations,
    __schema__.report_flow_stuck, __schema__.report_flow_timeline TO __reporting_role__;
