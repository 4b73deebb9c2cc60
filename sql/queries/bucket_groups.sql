-- The buckets that live in one place: one group per partition of `jobs` in the partitioned
-- layout (hash partitions: a bucket is in the partition whose modulus and remainder it
-- satisfies), one group of all 256 in the plain layout. A claim locks rows of one group per
-- statement, so that it reads one partition (on Citus: one shard).
SELECT array_agg(b.b::smallint ORDER BY b.b) AS buckets
FROM generate_series(0, 255) AS b(b)
LEFT JOIN (
    SELECT c.oid,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'modulus (\d+)')::int AS modulus,
           substring(pg_get_expr(c.relpartbound, c.oid) FROM 'remainder (\d+)')::int AS remainder
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = '__schema__.jobs'::regclass
) p ON satisfies_hash_partition('__schema__.jobs'::regclass, p.modulus, p.remainder, b.b::smallint)
GROUP BY p.oid
ORDER BY min(b.b)
