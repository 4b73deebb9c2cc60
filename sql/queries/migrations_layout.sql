-- The layout an existing schema was created with: the kind of its instances table ('p' for
-- partitioned, 'r' for a plain table), or no row before migration 1 created it.
SELECT c.relkind AS kind
FROM pg_class c
WHERE c.oid = to_regclass('__schema__.instances')
