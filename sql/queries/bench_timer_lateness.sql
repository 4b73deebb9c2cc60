-- Bench: how late each step timer fired, in milliseconds: the TimerFired event's stamp minus
-- the due time its TimerScheduled event set (both engine clock).
SELECT (extract(epoch FROM f.recorded_at - (s.data->>'due_at')::timestamptz) * 1000)::float8
FROM __schema__.events s
JOIN __schema__.events f
  ON f.instance_id = s.instance_id AND f.event_type = 'TimerFired'
 AND f.data->>'timer_id' = s.data->>'timer_id'
WHERE s.event_type = 'TimerScheduled'
