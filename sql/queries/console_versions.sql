-- Every process version with its instance counters and open incidents, from the counters the
-- activity projection keeps (no count over instances), with its tags.
SELECT d.process_id, d.version, d.deployed_at, d.start_message,
       coalesce(v.running, 0) AS running, coalesce(v.completed, 0) AS completed,
       coalesce(v.failed, 0) AS failed, coalesce(v.cancelled, 0) AS cancelled,
       coalesce((SELECT sum(s.incidents) FROM __schema__.step_counts s
                 WHERE s.process_id = d.process_id AND s.version = d.version), 0)::bigint
           AS incidents,
       coalesce((SELECT string_agg(t.tag, ',' ORDER BY t.tag) FROM __schema__.definition_tags t
                 WHERE t.process_id = d.process_id AND t.version = d.version), '') AS tags
FROM __schema__.definitions d
LEFT JOIN __schema__.version_counts v USING (process_id, version)
ORDER BY d.process_id, d.version
