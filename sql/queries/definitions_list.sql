-- Every process version with its instance counts and tags.
SELECT d.process_id, d.version, d.deployed_at, d.start_message,
       count(i.instance_id) FILTER (WHERE i.status = 'running')   AS running,
       count(i.instance_id) FILTER (WHERE i.status = 'completed') AS completed,
       count(i.instance_id) FILTER (WHERE i.status = 'failed')    AS failed,
       count(i.instance_id) FILTER (WHERE i.status = 'cancelled') AS cancelled,
       coalesce((SELECT string_agg(t.tag, ',' ORDER BY t.tag) FROM __schema__.definition_tags t
                 WHERE t.process_id = d.process_id AND t.version = d.version), '') AS tags
FROM __schema__.definitions d
LEFT JOIN __schema__.instances i ON i.process_id = d.process_id AND i.version = d.version
GROUP BY d.process_id, d.version, d.deployed_at, d.start_message
ORDER BY d.process_id, d.version
