-- longrun migration 0017: several message starts.
--
-- Purpose: a process may start on several messages (BPMN's several message start events),
-- each at a step of its own. Every message that starts a version is listed in
-- `start_messages`, where the inbox looks an inbound message up; `start_message` keeps the
-- first, for readers.
-- Locks: ACCESS EXCLUSIVE on definitions for a moment (a new column with a constant default
-- rewrites nothing; the backfill updates the few rows that start on a message), then SHARE
-- while the index is built (deploys wait; the table holds one row per version).

ALTER TABLE __schema__.definitions ADD COLUMN start_messages text[] NOT NULL DEFAULT '{}';
UPDATE __schema__.definitions SET start_messages = ARRAY[start_message]
WHERE start_message IS NOT NULL;
CREATE INDEX definitions_start_messages_idx ON __schema__.definitions USING gin (start_messages);
COMMENT ON COLUMN __schema__.definitions.start_messages IS
    'Every message that starts an instance of this version (the first is start_message).';
