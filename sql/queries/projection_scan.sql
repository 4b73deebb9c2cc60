-- The instances with events after a projection's checkpoint, in (xid, position) order, only
-- below the read horizon ($4, from read_horizon, in an earlier statement; so none is
-- skipped), and the new checkpoint: the last event looked at.
SELECT instance_id, xid::text::bigint, position
FROM __schema__.events
WHERE (xid, position) > ($1::bigint::text::xid8, $2::bigint)
  AND xid < $4::bigint::text::xid8
ORDER BY xid, position
LIMIT $3
