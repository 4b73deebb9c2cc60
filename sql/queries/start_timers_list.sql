-- Every timer start, soonest first (longrun timers).
SELECT process_id, version, due_at, fired FROM __schema__.start_timers ORDER BY due_at, process_id
