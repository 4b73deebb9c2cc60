-- A digest of the activity history and the counters kept with it, to compare the live
-- projection with its rebuild (counter rows that count nothing are left out: a rebuild does
-- not write them).
SELECT md5(coalesce((SELECT string_agg(a::text, '|' ORDER BY instance_id, seq)
                     FROM __schema__.activity a), '')
           || coalesce((SELECT string_agg(s::text, '|' ORDER BY process_id, version, step_id)
                        FROM __schema__.step_counts s
                        WHERE (waiting, incidents, completed, cancelled) <> (0, 0, 0, 0)), '')
           || coalesce((SELECT string_agg(v::text, '|' ORDER BY process_id, version)
                        FROM __schema__.version_counts v
                        WHERE (running, completed, failed, cancelled) <> (0, 0, 0, 0)), '')),
       (SELECT count(*) FROM __schema__.activity)
