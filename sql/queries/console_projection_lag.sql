-- The activity projection's lag for the console, cheaply: committed events after its
-- checkpoint, counted up to 1,000 (an index-only scan of at most that many entries), and when
-- it last applied a batch.
SELECT (SELECT count(*) FROM (SELECT 1 FROM __schema__.events e
                              WHERE (e.xid, e.position) > (p.last_xid, p.last_position)
                              LIMIT 1000) AS e) AS behind,
       p.updated_at
FROM __schema__.projections p
WHERE p.name = 'activity'
