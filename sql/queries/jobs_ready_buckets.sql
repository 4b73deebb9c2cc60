-- Which of the buckets $3 (in the order given) hold unclaimed jobs due at $2 for handlers $1:
-- one probe of jobs_claimable_idx per bucket and handler, however many jobs wait. The
-- claim then takes them bucket by bucket (jobs_claim). At most $4.
SELECT o.b AS bucket
FROM unnest($3::smallint[]) WITH ORDINALITY AS o(b, i)
WHERE EXISTS (SELECT 1 FROM __schema__.jobs j
              WHERE j.bucket = o.b AND j.lease_token IS NULL AND j.handler = ANY ($1::text[])
                AND j.run_at <= $2)
ORDER BY o.i
LIMIT $4
