-- What retention would remove of process $1 version $2 for instances ended before $3 (a dry
-- run), and how many of those wait for a projection to apply their stream first.
WITH due AS (
    SELECT i.bucket, i.instance_id,
           EXISTS (
               SELECT 1 FROM __schema__.projections p
               WHERE NOT EXISTS (
                   SELECT 1 FROM __schema__.projection_progress pp
                   WHERE pp.bucket = i.bucket AND pp.name = p.name AND pp.instance_id = i.instance_id
                     AND pp.seq >= i.seq)) AS held
    FROM __schema__.instances i
    WHERE i.process_id = $1 AND i.version = $2
      AND i.ended_at IS NOT NULL AND i.ended_at < $3
), ready AS (
    SELECT bucket, instance_id FROM due WHERE NOT held
)
SELECT (SELECT count(*) FROM ready) AS instances,
       (SELECT count(*) FROM __schema__.events e JOIN ready r USING (bucket, instance_id)) AS events,
       (SELECT count(*) FROM __schema__.activity a JOIN ready r USING (bucket, instance_id)) AS activity,
       (SELECT count(*) FROM __schema__.projection_progress pp JOIN ready r USING (bucket, instance_id))
           AS projection_progress,
       (SELECT count(*) FROM due WHERE held) AS held
