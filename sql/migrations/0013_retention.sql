-- longrun migration 0013: history with a lifetime.
--
-- Purpose: an ended instance's history (its events, activity rows, projection progress and
-- instance row) is removed once its process's retention period has passed since its end;
-- inbound message ids are kept for the deduplication window, outbound messages until every
-- consumer has passed them and they are older than the outbox retention. Removal is by bounded
-- batches, each a short transaction that locks only the ended instances it removes (SKIP
-- LOCKED), so no transition ever waits for it (`longrun retention`, and every engine in the
-- background). These indexes let each batch find its rows without scanning what stays.
-- Locks: ACCESS EXCLUSIVE on definitions for a moment (a nullable column rewrites nothing);
-- each index build holds SHARE on its table (writes wait) while it reads the table once. On a
-- large schema, a DBA may build them first with CREATE INDEX CONCURRENTLY under the same names
-- and then apply this migration (IF NOT EXISTS skips them).

ALTER TABLE __schema__.definitions ADD COLUMN retention interval;
COMMENT ON COLUMN __schema__.definitions.retention IS
    'How long an ended instance of this version is kept, from its end (the definition''s retention); NULL: the engine''s default.';

CREATE INDEX IF NOT EXISTS instances_ended_idx
    ON __schema__.instances (process_id, version, ended_at) WHERE ended_at IS NOT NULL;

CREATE INDEX IF NOT EXISTS inbox_settled_idx
    ON __schema__.inbox (received_at) WHERE status <> 'buffered';

CREATE INDEX IF NOT EXISTS outbox_created_idx ON __schema__.outbox (created_at);
