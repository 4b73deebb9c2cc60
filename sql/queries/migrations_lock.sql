-- Serializes migrations of one schema across processes: a transaction-scoped advisory lock
-- keyed by the schema name, released at commit.
SELECT pg_advisory_xact_lock(hashtextextended('longrun.migrate:' || $1::text, 0))
