-- One instance's current state.
SELECT instance_id, process_id, version, business_key, status, current_step, waiting_for,
       variables, seq, started_at, updated_at, ended_at, state
FROM __schema__.instances WHERE bucket = __schema__.bucket_of($1) AND instance_id = $1
