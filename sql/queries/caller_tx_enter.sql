-- A caller's transaction reaches longrun (start_tx, send_tx): it takes a lock on a longrun
-- table (the planner's lock on instances, held to the end of the transaction), which makes
-- read_horizon count it from now on, and says whether it had an xid already (it wrote
-- elsewhere first). If it had, its rows carry an xid taken after this statement instead of
-- its own: a reader may have passed its own xid while it was not counted yet.
SELECT pg_current_xact_id_if_assigned()::text::bigint AS assigned,
       (SELECT count(*) FROM (SELECT 1 FROM __schema__.instances LIMIT 0) AS none) AS locked
