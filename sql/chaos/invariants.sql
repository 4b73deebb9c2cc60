-- Invariants checked after a chaos run quiesces; each row names one and counts its
-- violations ($1: the number of orders placed).
SELECT invariant, violations FROM (
SELECT 1 AS n, 'instances: one per order placed' AS invariant,
       abs((SELECT count(*) FROM __schema__.instances) - $1::bigint) AS violations
UNION ALL
SELECT 2 AS n, 'end state: each order ended as its card implies (or its card update came after the window closed)',
       count(*) FROM __schema__.instances i
       WHERE i.status <> 'completed'
          OR (i.current_step IS DISTINCT FROM
                CASE WHEN (i.variables->>'cardExpired')::boolean
                          AND NOT coalesce((i.variables->>'willUpdateCard')::boolean, false)
                     THEN 'cancelled' ELSE 'done' END
              AND NOT (i.current_step = 'cancelled'
                       AND coalesce((i.variables->>'willUpdateCard')::boolean, false)
                       AND EXISTS (SELECT 1 FROM __schema__.inbox m
                                   JOIN __schema__.events c ON c.instance_id = i.instance_id
                                    AND c.event_type = 'CompensationStarted'
                                   WHERE m.name = 'CreditCardUpdated' AND m.key = i.business_key
                                     AND m.received_at >= c.recorded_at)))
UNION ALL
SELECT 3 AS n, 'ended exactly once',
       count(*) FROM (SELECT i.instance_id FROM __schema__.instances i
                      LEFT JOIN __schema__.events e ON e.instance_id = i.instance_id
                       AND e.event_type IN ('InstanceCompleted', 'InstanceCancelled', 'InstanceFailed')
                      GROUP BY i.instance_id HAVING count(e.seq) <> 1) x
UNION ALL
SELECT 4 AS n, 'streams contiguous from 1',
       count(*) FROM (SELECT instance_id FROM __schema__.events GROUP BY instance_id
                      HAVING min(seq) <> 1 OR max(seq) <> count(*)) x
UNION ALL
SELECT 5 AS n, 'side effects: one per idempotency key, for exactly the work done',
       (SELECT count(*) FROM (
           (SELECT (data->>'job_id') AS key FROM __schema__.events
            WHERE event_type = 'JobCompleted'
              AND (data->>'step' = 'charge_fee' OR data->>'step' LIKE 'pack\_line#%')
            UNION ALL
            SELECT message_id::text FROM __schema__.outbox
            WHERE name IN ('RetrievePayment', 'FetchGoods', 'ShipGoods', 'RefundPayment', 'ReleaseGoods'))
           EXCEPT ALL SELECT key FROM __app__.effects) missing)
     + (SELECT count(*) FROM (
           SELECT key FROM __app__.effects
           EXCEPT ALL
           (SELECT (data->>'job_id') FROM __schema__.events
            WHERE event_type = 'JobCompleted'
              AND (data->>'step' = 'charge_fee' OR data->>'step' LIKE 'pack\_line#%')
            UNION ALL
            SELECT message_id::text FROM __schema__.outbox
            WHERE name IN ('RetrievePayment', 'FetchGoods', 'ShipGoods', 'RefundPayment', 'ReleaseGoods'))) extra)
UNION ALL
SELECT 6 AS n, 'outbox: nothing left unpublished',
       count(*) FROM __schema__.outbox o
       JOIN __schema__.consumers c ON o.topic = ANY (c.topics)
       JOIN __schema__.consumer_checkpoints k ON k.bucket = o.bucket AND k.name = c.name
       WHERE (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq)
UNION ALL
SELECT 7 AS n, 'no job or timer left (claimed or not)',
       (SELECT count(*) FROM __schema__.jobs) + (SELECT count(*) FROM __schema__.timers)
UNION ALL
SELECT 8 AS n, 'no timer fired twice',
       count(*) FROM (SELECT data->>'timer_id' FROM __schema__.events WHERE event_type = 'TimerFired'
                      GROUP BY 1 HAVING count(*) > 1) x
UNION ALL
SELECT 9 AS n, 'no timer fired before it was due',
       count(*) FROM __schema__.events f
       JOIN __schema__.events s ON s.instance_id = f.instance_id AND s.event_type = 'TimerScheduled'
        AND s.data->>'timer_id' = f.data->>'timer_id'
       WHERE f.event_type = 'TimerFired' AND f.recorded_at < (s.data->>'due_at')::timestamptz
UNION ALL
SELECT 10 AS n, 'inbound messages: each correlated once, started once or dead-lettered with a reason',
       (SELECT count(*) FROM __schema__.inbox
        WHERE status NOT IN ('correlated', 'started', 'dead')
           OR (status = 'dead' AND coalesce(reason, '') = ''))
     + (SELECT count(*) FROM (SELECT data->>'message_id' FROM __schema__.events
                              WHERE event_type = 'MessageCorrelated'
                                -- a signal reaches many instances (checked per instance below)
                                AND data->>'name' NOT LIKE 'signal:%'
                              GROUP BY 1 HAVING count(*) > 1) x)
UNION ALL
SELECT 11 AS n, 'projections caught up',
       (SELECT count(*) FROM __schema__.projection_checkpoints k
        WHERE EXISTS (SELECT 1 FROM __schema__.events e
                      WHERE e.bucket = k.bucket
                        AND (e.xid, e.instance_id, e.seq) > (k.last_xid, k.last_instance, k.last_seq)))
UNION ALL
SELECT 12 AS n, 'console counters equal what they count (activity rows, instances by status)',
       (SELECT count(*) FROM (
            SELECT process_id, version, step_id,
                   count(*) FILTER (WHERE ended_at IS NULL) AS waiting,
                   count(*) FILTER (WHERE ended_at IS NULL AND incident) AS incidents,
                   count(*) FILTER (WHERE ended_at IS NOT NULL AND NOT cancelled) AS completed,
                   count(*) FILTER (WHERE ended_at IS NOT NULL AND cancelled) AS cancelled
            FROM (SELECT *, (outcome IN ('cancelled', 'failed')
                             OR outcome LIKE 'interrupted: cancelled%') AS cancelled
                  FROM __schema__.activity
                  -- a multi-instance step's elements have rows, not counts
                  WHERE step_id NOT LIKE '%#%') a
            GROUP BY 1, 2, 3) a
        FULL JOIN (SELECT * FROM __schema__.step_counts
                   WHERE (waiting, incidents, completed, cancelled) <> (0, 0, 0, 0)) s
          USING (process_id, version, step_id)
        WHERE (a.waiting, a.incidents, a.completed, a.cancelled)
              IS DISTINCT FROM (s.waiting, s.incidents, s.completed, s.cancelled))
     + (SELECT count(*) FROM (
            SELECT process_id, version,
                   count(*) FILTER (WHERE status = 'running') AS running,
                   count(*) FILTER (WHERE status = 'completed') AS completed,
                   count(*) FILTER (WHERE status = 'failed') AS failed,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled
            FROM __schema__.instances GROUP BY 1, 2) i
        FULL JOIN __schema__.version_counts v USING (process_id, version)
        WHERE (coalesce(i.running, 0), coalesce(i.completed, 0), coalesce(i.failed, 0),
               coalesce(i.cancelled, 0))
              IS DISTINCT FROM (coalesce(v.running, 0), coalesce(v.completed, 0),
                                coalesce(v.failed, 0), coalesce(v.cancelled, 0)))
UNION ALL
SELECT 13 AS n, 'user tasks: each completed exactly once, by whoever held it, none left open',
       (SELECT count(*) FROM __schema__.tasks)
     + (SELECT count(*) FROM __schema__.events c
        WHERE c.event_type = 'TaskCreated'
          AND (SELECT count(*) FROM __schema__.events d
               WHERE d.instance_id = c.instance_id AND d.event_type = 'TaskCompleted'
                 AND d.data->>'task_id' = c.data->>'task_id') <> 1)
     + (SELECT count(*) FROM __schema__.events d
        WHERE d.event_type = 'TaskCompleted'
          AND d.data->>'by' IS DISTINCT FROM
              (SELECT k.data->>'assignee' FROM __schema__.events k
               WHERE k.instance_id = d.instance_id AND k.event_type = 'TaskClaimed'
                 AND k.data->>'task_id' = d.data->>'task_id' AND k.seq < d.seq
               ORDER BY k.seq DESC LIMIT 1))
UNION ALL
SELECT 14 AS n, 'user tasks: one for exactly the paid orders above 80',
       count(*) FROM __schema__.instances i
       WHERE (i.current_step = 'done' AND (i.variables->>'amount')::int > 80)
             <> EXISTS (SELECT 1 FROM __schema__.events e
                        WHERE e.instance_id = i.instance_id AND e.event_type = 'TaskCreated')
UNION ALL
SELECT 15 AS n, 'multi-instance: each completed order packed each of its lines once, results in order',
       count(*) FROM __schema__.instances i
       WHERE i.current_step = 'done'
         AND ((SELECT count(*) FROM __schema__.events e
               WHERE e.instance_id = i.instance_id AND e.event_type = 'ElementCompleted')
              <> jsonb_array_length(i.variables->'lines')
              OR i.variables->'packed' IS DISTINCT FROM
                 (SELECT jsonb_agg(l->'sku' ORDER BY n)
                  FROM jsonb_array_elements(i.variables->'lines') WITH ORDINALITY AS t(l, n)))
UNION ALL
SELECT 16 AS n, 'signals: each received at most once per instance, every completed order opened by one, every broadcast finished',
       (SELECT count(*) FROM (SELECT instance_id, data->>'message_id' FROM __schema__.events
                              WHERE event_type = 'MessageCorrelated'
                                AND data->>'name' = 'signal:WarehouseOpen'
                              GROUP BY 1, 2 HAVING count(*) > 1) twice)
     + (SELECT count(*) FROM __schema__.instances i
        WHERE i.current_step = 'done'
          AND NOT EXISTS (SELECT 1 FROM __schema__.events e
                          WHERE e.instance_id = i.instance_id
                            AND e.event_type = 'MessageCorrelated'
                            AND e.data->>'name' = 'signal:WarehouseOpen'))
     + (SELECT count(*) FROM __schema__.signals WHERE finished_at IS NULL)
UNION ALL
SELECT 17 AS n, 'waits: no subscription left of an ended instance',
       count(*) FROM __schema__.subscriptions s
       JOIN __schema__.instances i ON i.instance_id = s.instance_id
       WHERE i.status <> 'running'
) checks ORDER BY n
