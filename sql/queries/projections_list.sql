-- Every projection with how many committed events it has not read yet (after its checkpoint in
-- their bucket) and in how many buckets.
SELECT p.name, p.events, p.rebuilt_at, p.updated_at,
       coalesce(sum(b.behind), 0)::bigint AS behind,
       count(*) FILTER (WHERE b.behind > 0) AS buckets_behind
FROM __schema__.projections p
LEFT JOIN __schema__.projection_checkpoints k ON k.name = p.name
LEFT JOIN LATERAL (
    SELECT count(*) AS behind FROM __schema__.events e
    WHERE e.bucket = k.bucket
      AND (e.xid, e.instance_id, e.seq) > (k.last_xid, k.last_instance, k.last_seq)
) b ON true
GROUP BY p.name, p.events, p.rebuilt_at, p.updated_at
ORDER BY p.name
