-- One trace's milestones across every context, in order.
SELECT context, process_id, instance_id, business_key, step_id, milestone, reached_at,
       traceparent
FROM __schema__.monitor_milestones
WHERE trace_key = $1
ORDER BY reached_at, context, instance_id, seq
