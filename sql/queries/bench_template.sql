-- Bench: an ended instance to copy, preferably one whose history the activity projection has
-- applied (`applied`).
SELECT i.instance_id,
       EXISTS (SELECT 1 FROM __schema__.projection_progress pp
               WHERE pp.instance_id = i.instance_id AND pp.seq >= i.seq) AS applied
FROM __schema__.instances i
WHERE i.ended_at IS NOT NULL
ORDER BY applied DESC
LIMIT 1
