-- One open task, with its instance's version and variables (what the task page shows).
SELECT t.task_id, t.instance_id, t.process_id, t.step_id, t.business_key, t.assignee,
       t.candidate_users, t.candidate_groups, t.priority, t.due_at, t.follow_up_at, t.form_key,
       t.created_at, t.updated_at, t.due_key, i.version, i.variables
FROM __schema__.tasks t JOIN __schema__.instances i
  ON i.bucket = __schema__.bucket_of(t.instance_id) AND i.instance_id = t.instance_id
WHERE t.bucket = __schema__.bucket_of($1) AND t.task_id = $1
