-- The run's figures: inbound messages, side effects performed again (absorbed by their key),
-- handler retries, cancelled orders, of which updated too late, dead letters, and user tasks
-- completed by the clerks and claims they made (more claims than tasks: a clerk's restart),
-- multi-instance elements completed, signals that reached someone and their receivers.
SELECT (SELECT count(*) FROM __schema__.inbox),
       (SELECT coalesce(sum(attempts - 1), 0) FROM __app__.effects),
       (SELECT count(*) FROM __schema__.events WHERE event_type = 'JobRetryScheduled'),
       (SELECT count(*) FROM __schema__.instances WHERE current_step = 'cancelled'),
       (SELECT count(*) FROM __schema__.instances WHERE current_step = 'cancelled'
          AND (variables->>'willUpdateCard')::boolean),
       (SELECT count(*) FROM __schema__.inbox WHERE status = 'dead'),
       (SELECT count(*) FROM __schema__.events WHERE event_type = 'TaskCompleted'),
       (SELECT count(*) FROM __schema__.events WHERE event_type = 'TaskClaimed'),
       (SELECT count(*) FROM __schema__.events WHERE event_type = 'ElementCompleted'),
       (SELECT count(*) FROM __schema__.signals WHERE delivered > 0),
       (SELECT coalesce(sum(delivered), 0)::bigint FROM __schema__.signals)
