-- Bench: __count__ copies of the ended instance __template__'s rows, as real runs leave them,
-- with new ids (copy g of a row keyed by an id gets an id derived from both), numbered from
-- __first__. One statement per table, run in one transaction per chunk. The placeholders are
-- filled with numbers and a UUID by the bench (never with text from outside).
CREATE TEMP TABLE IF NOT EXISTS prefill_ids (g bigint PRIMARY KEY, id uuid NOT NULL) ON COMMIT DROP;
INSERT INTO prefill_ids
SELECT g, md5(__template__::text || ':' || g)::uuid FROM generate_series(__first__::bigint, __first__::bigint + __count__::bigint - 1) g;
INSERT INTO __schema__.instances
    (bucket, instance_id, process_id, version, business_key, status, current_step, waiting_for,
     variables, state, seq, started_at, updated_at, ended_at, key_unique)
SELECT __schema__.bucket_of(p.id), p.id, i.process_id, i.version, 'prefill-' || p.g, i.status, i.current_step, i.waiting_for,
       i.variables, i.state, i.seq, i.started_at, i.updated_at, i.ended_at, i.key_unique
FROM __schema__.instances i, prefill_ids p WHERE i.instance_id = __template__::uuid;
INSERT INTO __schema__.events (bucket, instance_id, seq, event_type, data, recorded_at, schema_version)
SELECT __schema__.bucket_of(p.id), p.id, e.seq, e.event_type, e.data, e.recorded_at, e.schema_version
FROM __schema__.events e, prefill_ids p WHERE e.instance_id = __template__::uuid;
INSERT INTO __schema__.activity
    (bucket, instance_id, seq, process_id, version, step_id, kind, started_at, ended_at, outcome,
     attempts, incident)
SELECT __schema__.bucket_of(p.id), p.id, a.seq, a.process_id, a.version, a.step_id, a.kind, a.started_at, a.ended_at,
       a.outcome, a.attempts, a.incident
FROM __schema__.activity a, prefill_ids p WHERE a.instance_id = __template__::uuid;
INSERT INTO __schema__.projection_progress (bucket, name, instance_id, seq)
SELECT __schema__.bucket_of(p.id), pp.name, p.id, pp.seq
FROM __schema__.projection_progress pp, prefill_ids p WHERE pp.instance_id = __template__::uuid;
INSERT INTO __schema__.outbox
    (bucket, message_id, instance_id, topic, kind, name, key, payload, created_at, trace_key,
     traceparent)
SELECT __schema__.bucket_of(p.id), md5(o.message_id::text || ':' || p.g)::uuid, p.id, o.topic, o.kind, o.name,
       'prefill-' || p.g, o.payload, o.created_at, 'prefill-' || p.g, o.traceparent
FROM __schema__.outbox o, prefill_ids p WHERE o.instance_id = __template__::uuid;
INSERT INTO __schema__.inbox
    (bucket, message_id, name, key, payload, status, instance_id, reason, received_at, expires_at,
     processed_at)
SELECT __schema__.bucket_of_key('prefill-' || p.g), b.message_id || ':' || p.g, b.name, 'prefill-' || p.g, b.payload, b.status, p.id,
       b.reason, b.received_at, b.expires_at, b.processed_at
FROM __schema__.inbox b, prefill_ids p WHERE b.instance_id = __template__::uuid;
