-- What outbox retention would remove now (a dry run), and how many old messages wait for a
-- consumer that has not passed them yet.
SELECT count(*) FILTER (WHERE NOT held) AS messages, count(*) FILTER (WHERE held) AS held
FROM (
    SELECT EXISTS (
               SELECT 1 FROM __schema__.consumers c
               JOIN __schema__.consumer_checkpoints k ON k.bucket = o.bucket AND k.name = c.name
               WHERE o.topic = ANY (c.topics)
                 AND (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq))
           AS held
    FROM __schema__.outbox o
    WHERE o.created_at < $1
) m
