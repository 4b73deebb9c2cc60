-- One instance's history, in order.
SELECT seq, event_type, data, recorded_at FROM __schema__.events
WHERE instance_id = $1 ORDER BY seq
