-- Rows and bytes of each table of the schema (`longrun storage`): rows as the planner last
-- estimated them (-1 if never analysed) or, with $1, counted (a full scan of each table),
-- bytes with indexes and TOAST, the table alone and its indexes.
SELECT c.relname AS table_name,
       CASE WHEN $1::boolean
            THEN (xpath('/row/n/text()',
                        query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname,
                                            c.relname), false, true, '')))[1]::text::bigint
            ELSE c.reltuples::bigint
       END AS rows,
       pg_total_relation_size(c.oid) AS total_bytes,
       pg_relation_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '__schema_name__' AND c.relkind IN ('r', 'p')
ORDER BY pg_total_relation_size(c.oid) DESC, c.relname
