-- An engine renews its lease ($1 owner, $2 handlers, $3 how long it lasts, in ms) and learns which
-- other engines with its handlers are live: it shares the buckets with them. Rows expired an
-- hour ago go.
WITH renewed AS (
    INSERT INTO __schema__.engines AS e (owner, handlers, started_at, seen_at, expires_at)
    VALUES ($1, $2, now(), now(), now() + $3::bigint * interval '1 millisecond')
    ON CONFLICT (owner) DO UPDATE
    SET handlers = excluded.handlers, seen_at = now(), expires_at = excluded.expires_at
    RETURNING owner
), gone AS (
    DELETE FROM __schema__.engines WHERE expires_at < now() - interval '1 hour'
)
SELECT owner FROM __schema__.engines
WHERE handlers = $2 AND expires_at > now() AND owner <> $1
ORDER BY owner
