-- The oldest unexpired buffered messages instances that start waiting can take: for each
-- (name, key) pair, as many as it has waiters ($3), oldest first, locked; rows another
-- transaction holds are skipped, and so are those the batch took already ($5: they stay
-- `buffered` until it writes). The caller holds the pairs' correlation locks. A batch runs it
-- once per group of the keys' buckets (Store::split_by_group): it locks in one partition. $6:
-- the group's buckets, or NULL where all buckets are one group (as in instances_lock).
SELECT m.name, m.key, m.message_id, m.payload
FROM unnest($1::text[], $2::text[], $3::int[]) AS p(name, key, n)
CROSS JOIN LATERAL (
    SELECT i.name, i.key, i.message_id, i.payload, i.received_at
    FROM __schema__.inbox i
    WHERE i.bucket = __schema__.bucket_of_key(p.key) AND i.status = 'buffered' AND i.name = p.name AND i.key = p.key AND i.expires_at > $4
      AND i.message_id <> ALL ($5::text[])
      AND ($6::smallint[] IS NULL OR i.bucket = ANY ($6::smallint[]))
    ORDER BY i.received_at
    LIMIT p.n
    FOR UPDATE SKIP LOCKED
) m
ORDER BY m.name, m.key, m.received_at
