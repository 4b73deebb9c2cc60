-- Bench: __count__ copies of the running instance __template__, which waits at a user task,
-- numbered from __first__: its instance row, its events and its open task, each copy with its
-- own instance and task ids, offered to the groups `all` and `g<copy mod 10>`, due a minute
-- apart over a thousand minutes. One statement per table, run in one transaction per chunk.
-- The placeholders are filled with numbers and a UUID by the bench (never with text from
-- outside).
CREATE TEMP TABLE IF NOT EXISTS task_ids
    (g bigint PRIMARY KEY, iid uuid NOT NULL, tid uuid NOT NULL, grp text NOT NULL,
     due timestamptz NOT NULL) ON COMMIT DROP;
INSERT INTO task_ids
SELECT g, md5(__template__::text || ':i:' || g)::uuid, md5(__template__::text || ':t:' || g)::uuid,
       'g' || (g % 10), t.created_at + make_interval(mins => (g % 1000)::int)
FROM generate_series(__first__::bigint, __first__::bigint + __count__::bigint - 1) g,
     __schema__.tasks t WHERE t.instance_id = __template__::uuid;
INSERT INTO __schema__.instances
    (bucket, instance_id, process_id, version, business_key, status, current_step, waiting_for,
     variables, state, seq, started_at, updated_at, ended_at, key_unique)
SELECT __schema__.bucket_of(p.iid), p.iid, i.process_id, i.version, 'task-' || p.g, i.status, i.current_step, i.waiting_for,
       i.variables,
       jsonb_set(jsonb_set(jsonb_set(i.state, '{waits,0,task_id}', to_jsonb(p.tid::text)),
                           '{waits,0,task,candidate_groups}', jsonb_build_array('all', p.grp)),
                 '{waits,0,task,due_at}', to_jsonb(p.due)),
       i.seq, i.started_at, i.updated_at, i.ended_at, i.key_unique
FROM __schema__.instances i, task_ids p WHERE i.instance_id = __template__::uuid;
INSERT INTO __schema__.events (bucket, instance_id, seq, event_type, data, recorded_at, schema_version)
SELECT __schema__.bucket_of(p.iid), p.iid, e.seq, e.event_type,
       CASE WHEN e.event_type = 'TaskCreated'
            THEN e.data || jsonb_build_object('task_id', p.tid, 'candidate_groups',
                                              jsonb_build_array('all', p.grp), 'due_at', p.due)
            ELSE e.data END,
       e.recorded_at, e.schema_version
FROM __schema__.events e, task_ids p WHERE e.instance_id = __template__::uuid;
INSERT INTO __schema__.tasks
    (bucket, task_id, instance_id, process_id, step_id, business_key, assignee, candidate_users,
     candidate_groups, priority, due_at, follow_up_at, form_key, created_at, updated_at)
SELECT __schema__.bucket_of(p.iid), p.tid, p.iid, t.process_id, t.step_id, 'task-' || p.g, NULL, '{}', ARRAY['all', p.grp],
       t.priority, p.due, t.follow_up_at, t.form_key, t.created_at, t.updated_at
FROM __schema__.tasks t, task_ids p WHERE t.instance_id = __template__::uuid;
INSERT INTO __schema__.task_candidates (bucket, kind, name, due_key, created_at, task_id)
SELECT __schema__.bucket_of(p.iid), 'group', c.name, p.due, t.created_at, p.tid
FROM __schema__.tasks t, task_ids p, unnest(ARRAY['all', p.grp]) AS c(name)
WHERE t.instance_id = __template__::uuid;
