-- The next transaction id to be assigned (on a connection of its own, after a caller's
-- transaction took its lock on a longrun table): the xid its rows are written with.
SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next
