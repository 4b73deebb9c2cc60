-- The activity projection's lag for the console, cheaply: committed events after its
-- checkpoints, counted up to 1,000 (index-only scans of at most that many entries), and when
-- it last applied a batch.
SELECT (SELECT count(*) FROM (SELECT 1
                              FROM __schema__.projection_checkpoints k
                              JOIN __schema__.events e
                                ON e.bucket = k.bucket
                               AND (e.xid, e.instance_id, e.seq)
                                   > (k.last_xid, k.last_instance, k.last_seq)
                              WHERE k.name = 'activity'
                              LIMIT 1000) AS e) AS behind,
       p.updated_at
FROM __schema__.projections p
WHERE p.name = 'activity'
