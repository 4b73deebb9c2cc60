-- After a firing: the next due time and the count, or (with $2 NULL) the end of the schedule.
WITH moved AS (
    UPDATE __schema__.start_timers SET due_at = $2, fired = $3
    WHERE process_id = $1 AND $2::timestamptz IS NOT NULL
    RETURNING 1
)
DELETE FROM __schema__.start_timers WHERE process_id = $1 AND $2::timestamptz IS NULL
