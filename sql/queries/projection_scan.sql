-- The instances with events after a projection's checkpoint, in (xid, position) order, only
-- from transactions older than every one still running (so none is skipped), and the new
-- checkpoint: the last event looked at.
SELECT instance_id, xid::text::bigint, position
FROM __schema__.events
WHERE (xid, position) > ($1::bigint::text::xid8, $2::bigint)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, position
LIMIT $3
