-- Every engine row, live or not (`longrun engines`), grouped by the handlers they share the
-- buckets for.
SELECT owner, handlers, started_at, seen_at, expires_at, expires_at > now() AS live
FROM __schema__.engines
ORDER BY handlers, owner
