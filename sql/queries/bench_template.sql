-- Bench: an ended instance whose history the activity projection has applied, to copy.
SELECT i.instance_id FROM __schema__.instances i
WHERE i.ended_at IS NOT NULL
  AND EXISTS (SELECT 1 FROM __schema__.projection_progress pp
              WHERE pp.instance_id = i.instance_id AND pp.seq >= i.seq)
LIMIT 1
