-- Rows and bytes of each table of the schema (`longrun storage`): rows as the planner last
-- estimated them (-1 if never analysed) or, with $1, counted (a full scan of each table),
-- bytes with indexes and TOAST, the table alone and its indexes. A partitioned table (the
-- partitioned layout) is one line: the sums over its partitions.
SELECT c.relname AS table_name,
       CASE WHEN $1::boolean
            THEN (xpath('/row/n/text()',
                        query_to_xml(format('SELECT count(*) AS n FROM %I.%I', n.nspname,
                                            c.relname), false, true, '')))[1]::text::bigint
            ELSE s.estimated
       END AS rows,
       s.total_bytes, s.table_bytes, s.index_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT CASE WHEN bool_and(l.reltuples < 0) THEN -1
                ELSE sum(greatest(l.reltuples, 0)) END::bigint AS estimated,
           sum(pg_total_relation_size(t.relid))::bigint AS total_bytes,
           sum(pg_relation_size(t.relid))::bigint AS table_bytes,
           sum(pg_indexes_size(t.relid))::bigint AS index_bytes
    FROM (SELECT p.relid FROM pg_partition_tree(c.oid) AS p WHERE p.isleaf AND c.relkind = 'p'
          UNION ALL SELECT c.oid WHERE c.relkind = 'r') AS t(relid)
    JOIN pg_class l ON l.oid = t.relid
) s
WHERE n.nspname = '__schema_name__' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY s.total_bytes DESC, c.relname
