-- Withdraws jobs whose wait ended otherwise (a timeout or an interrupting timer). A handler
-- still running finds no job when it finishes, and its result is dropped.
DELETE FROM __schema__.jobs WHERE job_id = ANY ($1::uuid[])
