-- Serializes deploys of one process, so versions are numbered without gaps or clashes.
SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))
