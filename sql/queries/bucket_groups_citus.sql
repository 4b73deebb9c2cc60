-- On Citus: the buckets that live in one place are those of one shard of `jobs` (the other
-- per-instance tables are colocated with it, so a group's buckets share one shard of each and
-- that shard group's node). No rows where `jobs` is not distributed by hash: the groups then
-- come from bucket_groups. Run only where citus_present says Citus is installed.
-- Not run here (no Citus on the machines longrun is tested on): written to Citus's documented
-- catalog (pg_dist_partition) and get_shard_id_for_distribution_column(table, value).
SELECT array_agg(b.b::smallint ORDER BY b.b) AS buckets
FROM generate_series(0, 255) AS b(b)
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
              WHERE logicalrelid = '__schema__.jobs'::regclass AND partmethod = 'h')
GROUP BY get_shard_id_for_distribution_column('__schema__.jobs'::regclass, b.b::smallint)
ORDER BY min(b.b)
