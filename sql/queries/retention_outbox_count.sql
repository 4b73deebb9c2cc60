-- What outbox retention would remove now (a dry run), and how many old messages wait for a
-- consumer that has not passed them yet.
SELECT count(*) FILTER (WHERE NOT held) AS messages, count(*) FILTER (WHERE held) AS held
FROM (
    SELECT EXISTS (
               SELECT 1 FROM __schema__.consumers c
               WHERE o.topic = ANY (c.topics)
                 AND (o.xid, o.position) > (c.last_xid, c.last_position)) AS held
    FROM __schema__.outbox o
    WHERE o.created_at < $1
) m
