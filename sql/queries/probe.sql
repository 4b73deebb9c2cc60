-- One look for work of every kind, while an engine is idle: due jobs for its handlers, outbox
-- messages after a checkpoint of its subscribers, events after a checkpoint of its
-- projections (each bucket against the checkpoint for it), the earliest timer, signals still being broadcast, timer starts due, jobs of
-- its handlers whose lease lapsed, buffered messages past their time to live. Each
-- answer only says where to look: the worker it wakes reads as it always does. One statement
-- every max_poll_interval instead of one look per worker.
SELECT
    EXISTS (SELECT 1 FROM __schema__.jobs
            WHERE lease_token IS NULL AND handler = ANY ($1::text[]) AND run_at <= $2) AS jobs,
    ARRAY(SELECT c.name FROM __schema__.consumers c
          WHERE c.name = ANY ($3::text[])
            AND EXISTS (SELECT 1 FROM __schema__.consumer_checkpoints k
                        WHERE k.name = c.name
                          AND EXISTS (SELECT 1 FROM __schema__.outbox o
                                      WHERE o.bucket = k.bucket AND o.topic = ANY (c.topics)
                                        AND (o.xid, o.instance_id, o.seq)
                                            > (k.last_xid, k.last_instance, k.last_seq))))
        AS consumers,
    ARRAY(SELECT p.name FROM __schema__.projections p
          WHERE p.name = ANY ($4::text[])
            AND EXISTS (SELECT 1 FROM __schema__.projection_checkpoints k
                        WHERE k.name = p.name
                          AND EXISTS (SELECT 1 FROM __schema__.events e
                                      WHERE e.bucket = k.bucket
                                        AND (e.xid, e.instance_id, e.seq)
                                            > (k.last_xid, k.last_instance, k.last_seq))))
        AS projections,
    (SELECT min(due_at) FROM __schema__.timers) AS next_timer,
    EXISTS (SELECT 1 FROM __schema__.signals WHERE finished_at IS NULL) AS signals,
    EXISTS (SELECT 1 FROM __schema__.start_timers WHERE due_at <= $2) AS start_timers,
    EXISTS (SELECT 1 FROM __schema__.jobs
            WHERE lease_token IS NOT NULL AND lease_expires_at <= $2
              AND handler = ANY ($1::text[])) AS lapsed,
    EXISTS (SELECT 1 FROM __schema__.inbox
            WHERE status = 'buffered' AND expires_at <= $2) AS expired
