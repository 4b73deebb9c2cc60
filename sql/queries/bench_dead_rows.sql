-- Bench: dead row versions in the schema's tables as the statistics last counted them (the
-- ones vacuum and pruning have not removed yet), and the largest such table.
SELECT coalesce(sum(n_dead_tup), 0)::bigint AS dead,
       coalesce((SELECT relname FROM pg_stat_user_tables
                 WHERE schemaname = '__schema_name__'
                 ORDER BY n_dead_tup DESC LIMIT 1), '') AS most
FROM pg_stat_user_tables
WHERE schemaname = '__schema_name__'
