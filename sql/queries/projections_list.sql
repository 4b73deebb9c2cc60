-- Every projection with its checkpoint and how many committed events it has not read yet.
SELECT p.name, p.last_xid::text::bigint, p.last_position, p.events, p.rebuilt_at, p.updated_at,
       (SELECT count(*) FROM __schema__.events e
        WHERE (e.xid, e.position) > (p.last_xid, p.last_position)) AS behind
FROM __schema__.projections p
ORDER BY p.name
