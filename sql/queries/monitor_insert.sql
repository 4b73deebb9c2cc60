-- Keeps milestones read from one context (a batch); one already kept (a redelivery after a
-- crash, before the checkpoint moved) is left as it is.
INSERT INTO __schema__.monitor_milestones
    (context, message_id, trace_key, traceparent, process_id, instance_id, business_key,
     step_id, milestone, reached_at, seq)
SELECT $1, u.*
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[], $7::text[], $8::text[],
            $9::text[], $10::timestamptz[], $11::bigint[]) AS u
ON CONFLICT (context, message_id) DO NOTHING
