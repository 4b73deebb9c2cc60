-- Breaks two invariants on purpose (--sabotage): a side effect is lost and an order's end
-- state is wrong. The run must then fail.
DELETE FROM __app__.effects WHERE key = (SELECT min(key) FROM __app__.effects);
UPDATE __schema__.instances SET current_step = 'sabotaged'
WHERE instance_id = (SELECT instance_id FROM __schema__.instances ORDER BY instance_id LIMIT 1);
