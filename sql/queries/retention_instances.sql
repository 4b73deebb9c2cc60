-- One batch of retention: up to $4 instances of process $1 version $2 that ended before $3,
-- removed with their events, activity rows and projection progress, in one short transaction.
-- An instance is taken only once every projection has applied its whole stream (so no
-- projection misses an event), and only if no one holds its row (SKIP LOCKED: a batch never
-- waits for a transition, and engines running retention at once take different instances).
-- Running instances are never taken: their ended_at is NULL.
-- $5: the buckets of one group (Store::bucket_groups), or NULL for all (the plain layout's
-- one group): run once per group, it locks and deletes in one partition (on Citus, one shard).
WITH doomed AS (
    SELECT i.bucket, i.instance_id
    FROM __schema__.instances i
    WHERE i.process_id = $1 AND i.version = $2
      AND i.ended_at IS NOT NULL AND i.ended_at < $3
      AND ($5::smallint[] IS NULL OR i.bucket = ANY ($5::smallint[]))
      AND NOT EXISTS (
          SELECT 1 FROM __schema__.projections p
          WHERE NOT EXISTS (
              SELECT 1 FROM __schema__.projection_progress pp
              WHERE pp.bucket = i.bucket AND pp.name = p.name AND pp.instance_id = i.instance_id AND pp.seq >= i.seq))
    ORDER BY i.ended_at
    LIMIT $4
    FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM __schema__.events e USING doomed d
    WHERE e.bucket = d.bucket AND e.instance_id = d.instance_id
      AND ($5::smallint[] IS NULL OR e.bucket = ANY ($5::smallint[]))
    RETURNING 1
), activity AS (
    DELETE FROM __schema__.activity a USING doomed d
    WHERE a.bucket = d.bucket AND a.instance_id = d.instance_id
      AND ($5::smallint[] IS NULL OR a.bucket = ANY ($5::smallint[]))
    RETURNING 1
), progress AS (
    DELETE FROM __schema__.projection_progress pp USING doomed d
    WHERE pp.bucket = d.bucket AND pp.instance_id = d.instance_id
      AND ($5::smallint[] IS NULL OR pp.bucket = ANY ($5::smallint[]))
    RETURNING 1
), removed AS (
    DELETE FROM __schema__.instances i USING doomed d
    WHERE i.bucket = d.bucket AND i.instance_id = d.instance_id
      AND ($5::smallint[] IS NULL OR i.bucket = ANY ($5::smallint[]))
    RETURNING 1
)
SELECT (SELECT count(*) FROM removed) AS instances,
       (SELECT count(*) FROM events) AS events,
       (SELECT count(*) FROM activity) AS activity,
       (SELECT count(*) FROM progress) AS projection_progress
