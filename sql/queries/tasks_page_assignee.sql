-- One page of the tasks someone holds ($10), in list order after the cursor, with the same
-- filters as tasks_page.sql; read from tasks_assignee_idx.
SELECT t.task_id, t.instance_id, t.process_id, t.step_id, t.business_key, t.assignee,
       t.candidate_users, t.candidate_groups, t.priority, t.due_at, t.follow_up_at, t.form_key,
       t.created_at, t.updated_at, t.due_key
FROM __schema__.tasks t
WHERE t.assignee = $10::text
  AND (t.due_key, t.created_at, t.task_id) > (coalesce($6::timestamptz, 'infinity'), $7::timestamptz, $8::uuid)
  AND ($1::text IS NULL OR t.process_id = $1)
  AND ($2::timestamptz IS NULL OR t.due_at < $2)
  AND ($3::timestamptz IS NULL OR t.follow_up_at < $3)
  AND t.priority >= $4::smallint
  AND (NOT $5::bool OR t.assignee IS NULL)
ORDER BY t.due_key, t.created_at, t.task_id
LIMIT $9
