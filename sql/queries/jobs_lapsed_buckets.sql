-- Which of the buckets $3 hold jobs of handlers $1 whose lease lapsed by $2 (rare: their
-- engine died or stalled), found through jobs_leased_idx. At most $4.
SELECT DISTINCT bucket FROM __schema__.jobs
WHERE lease_token IS NOT NULL AND lease_expires_at <= $2 AND handler = ANY ($1::text[])
  AND bucket = ANY ($3::smallint[])
LIMIT $4
