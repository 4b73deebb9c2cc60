-- A deploy of a version without a timer start ends the process's schedule.
DELETE FROM __schema__.start_timers WHERE process_id = $1
