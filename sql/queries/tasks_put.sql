-- Writes open tasks as a batch of transitions left them: new ones are inserted, changed ones
-- (claimed, released, reassigned, new dates or priority, moved to a migrated step) updated.
-- The candidate lists come as JSON arrays (one per task).
INSERT INTO __schema__.tasks AS t
    (bucket, task_id, instance_id, process_id, step_id, business_key, assignee, candidate_users,
     candidate_groups, priority, due_at, follow_up_at, form_key, created_at, updated_at)
SELECT __schema__.bucket_of(r.task_id), r.task_id, r.instance_id, r.process_id, r.step_id, r.business_key, r.assignee,
       ARRAY(SELECT jsonb_array_elements_text(r.users)),
       ARRAY(SELECT jsonb_array_elements_text(r.groups)),
       r.priority, r.due_at, r.follow_up_at, r.form_key, r.created_at, r.updated_at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::jsonb[], $8::jsonb[], $9::smallint[], $10::timestamptz[], $11::timestamptz[],
            $12::text[], $13::timestamptz[], $14::timestamptz[])
     AS r(task_id, instance_id, process_id, step_id, business_key, assignee, users, groups,
          priority, due_at, follow_up_at, form_key, created_at, updated_at)
ON CONFLICT (bucket, task_id) DO UPDATE SET
    step_id = excluded.step_id,
    assignee = excluded.assignee,
    candidate_users = excluded.candidate_users,
    candidate_groups = excluded.candidate_groups,
    priority = excluded.priority,
    due_at = excluded.due_at,
    follow_up_at = excluded.follow_up_at,
    updated_at = excluded.updated_at
