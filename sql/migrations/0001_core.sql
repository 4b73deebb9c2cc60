-- longrun migration 0001: the core tables.
--
-- Purpose: process definitions, instance event streams and current state, the outbox and its
-- consumers, the inbox, message subscriptions and handler jobs.
-- Locks: creates new objects only; takes no lock on existing tables. Safe to run while nothing
-- else uses the schema; longrun itself runs it under a transaction-scoped advisory lock.
-- `__schema__` stands for the configured schema name (default `longrun`); longrun substitutes the
-- quoted name. `longrun migrate --print` shows the exact SQL that will run.
--
-- Distribution: every per-instance table carries `bucket` (0 to 255), and every primary key and
-- unique index on it leads with it, so on Citus the tables are distributed by `bucket` and
-- `definitions` is a reference table (docs/SCALING.md). An instance's bucket is the last byte of
-- its id (`bucket_of`); longrun mints ids whose last byte is the bucket of the business key
-- (`bucket_of_key`), so an instance and the messages correlated to it by that key share a
-- bucket. `__bucketed__` after a bucketed table is empty in the plain layout and `PARTITION BY
-- HASH (bucket)` in the partitioned one (`longrun migrate --layout partitioned`), whose 16
-- partitions `bucket_partitions` then creates.

CREATE FUNCTION __schema__.bucket_of(id uuid) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT get_byte(uuid_send(id), 15)::smallint $$;
COMMENT ON FUNCTION __schema__.bucket_of(uuid) IS
    'The bucket of an instance (and of every row it owns): the last byte of its id.';

-- Declared stable, as convert_to is (it reads the database encoding): PostgreSQL then inlines
-- the body into each statement that calls it. Declared immutable it was run as a function call
-- per row or per key, a few microseconds each (6.8 ms for one call of inbox_take_buffered).
CREATE FUNCTION __schema__.bucket_of_key(key text) RETURNS smallint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT get_byte(sha256(convert_to(key, 'UTF8')), 0)::smallint $$;
COMMENT ON FUNCTION __schema__.bucket_of_key(text) IS
    'The bucket of a correlation or business key: the first byte of the SHA-256 of its UTF-8 bytes. Instances started with that business key get ids in this bucket.';

-- Only migrations call it: in the partitioned layout it creates a bucketed table's partitions
-- (with `storage`, e.g. fillfactor); in the plain layout it sets `storage` on the table.
CREATE FUNCTION __schema__.bucket_partitions(tbl regclass, storage text DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    parts constant integer := 16;
    nsp text;
    rel text;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl;
    IF (SELECT relkind FROM pg_class WHERE oid = tbl) = 'p' THEN
        FOR i IN 0 .. parts - 1 LOOP
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES WITH (MODULUS %s, REMAINDER %s)%s',
                           nsp, rel || '_p' || i, tbl, parts, i,
                           CASE WHEN storage IS NULL THEN '' ELSE ' WITH (' || storage || ')' END);
        END LOOP;
    ELSIF storage IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s SET (%s)', tbl, storage);
    END IF;
END $$;
COMMENT ON FUNCTION __schema__.bucket_partitions(regclass, text) IS
    'Migrations only: the 16 hash partitions of a bucketed table in the partitioned layout.';

CREATE TABLE __schema__.definitions (
    process_id   text        NOT NULL,
    version      integer     NOT NULL CHECK (version > 0),
    checksum     text        NOT NULL,
    document     jsonb       NOT NULL,
    start_message text,
    receives     text[]      NOT NULL DEFAULT '{}',
    deployed_at  timestamptz NOT NULL,
    PRIMARY KEY (process_id, version),
    UNIQUE (process_id, checksum)
);
COMMENT ON TABLE __schema__.definitions IS
    'Immutable versions of process definitions. A deploy of an unchanged document finds its existing version; a changed one adds version + 1.';
COMMENT ON COLUMN __schema__.definitions.process_id IS 'The process id, e.g. order.';
COMMENT ON COLUMN __schema__.definitions.version IS 'Version number, 1, 2, ... per process.';
COMMENT ON COLUMN __schema__.definitions.checksum IS 'SHA-256 (hex) of the canonical JSON document; identifies an unchanged redeploy.';
COMMENT ON COLUMN __schema__.definitions.document IS 'The definition as a JSON document (the same form longrun deploy reads).';
COMMENT ON COLUMN __schema__.definitions.start_message IS 'Name of the message that starts an instance of this version, if any.';
COMMENT ON COLUMN __schema__.definitions.receives IS 'Names of every message this version starts on or waits for; inbound messages named nowhere are dead-lettered.';
COMMENT ON COLUMN __schema__.definitions.deployed_at IS 'When the version was deployed (engine clock).';

CREATE INDEX definitions_start_message_idx ON __schema__.definitions (start_message)
    WHERE start_message IS NOT NULL;

CREATE TABLE __schema__.instances (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    instance_id  uuid        NOT NULL,
    process_id   text        NOT NULL,
    version      integer     NOT NULL,
    business_key text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    current_step text,
    waiting_for  text,
    variables    jsonb       NOT NULL DEFAULT '{}',
    state        jsonb       NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    started_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    ended_at     timestamptz,
    PRIMARY KEY (bucket, instance_id),
    CHECK ((status = 'running') = (ended_at IS NULL)),
    FOREIGN KEY (process_id, version) REFERENCES __schema__.definitions (process_id, version)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.instances', 'fillfactor = 80');
COMMENT ON TABLE __schema__.instances IS
    'Current state of each process instance: a projection of its events, updated in the same transaction that appends them. Rebuildable from events.';
COMMENT ON COLUMN __schema__.instances.bucket IS 'The bucket, bucket_of(instance_id): leads every key of every table the instance owns.';
COMMENT ON COLUMN __schema__.instances.instance_id IS 'The instance id (UUIDv7, so ids sort by start time).';
COMMENT ON COLUMN __schema__.instances.process_id IS 'The process it runs.';
COMMENT ON COLUMN __schema__.instances.version IS 'The definition version it runs; changed only by an instance migration (a Migrated event in its history).';
COMMENT ON COLUMN __schema__.instances.business_key IS 'The business key, e.g. the order id; default correlation key of its messages.';
COMMENT ON COLUMN __schema__.instances.status IS 'running, completed, failed or cancelled. An instance with an open incident is running (see waiting_for).';
COMMENT ON COLUMN __schema__.instances.current_step IS 'The step it waits at while running; the last step once ended.';
COMMENT ON COLUMN __schema__.instances.waiting_for IS 'In words, what it waits for: "message PaymentReceived key 42", "job charge_card", "timer due ..." or "incident after 3 attempts: <error>".';
COMMENT ON COLUMN __schema__.instances.variables IS 'The instance variables (JSON object).';
COMMENT ON COLUMN __schema__.instances.state IS 'The state machine''s state (JSON) but for the variables, which are in their own column: together, the fold of all events.';
COMMENT ON COLUMN __schema__.instances.seq IS 'Sequence number of its last event: the stream version, checked on every append.';
COMMENT ON COLUMN __schema__.instances.started_at IS 'When it started (engine clock).';
COMMENT ON COLUMN __schema__.instances.updated_at IS 'When its last event was appended (engine clock).';
COMMENT ON COLUMN __schema__.instances.ended_at IS 'When it completed or failed; NULL while running.';

-- An instance by its id alone: for a DBA's query, the reporting views and the console, which
-- join by instance_id. longrun's own statements name the bucket too and use the primary key.
CREATE INDEX instances_id_idx ON __schema__.instances (instance_id);
CREATE INDEX instances_process_status_idx ON __schema__.instances (process_id, status, version);
CREATE INDEX instances_business_key_idx ON __schema__.instances (business_key, process_id);

CREATE TABLE __schema__.events (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    instance_id  uuid        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_type   text        NOT NULL,
    data         jsonb       NOT NULL,
    recorded_at  timestamptz NOT NULL,
    PRIMARY KEY (bucket, instance_id, seq)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.events');
COMMENT ON TABLE __schema__.events IS
    'Append-only event streams, one per instance, seq contiguous from 1. The source of truth; every other table but definitions, inbox and consumers is derived from it or from effects it implies.';
COMMENT ON COLUMN __schema__.events.bucket IS 'The instance''s bucket (bucket_of(instance_id)): leads every key.';
COMMENT ON COLUMN __schema__.events.instance_id IS 'The stream (instance) it belongs to.';
COMMENT ON COLUMN __schema__.events.seq IS 'Position within the stream: 1, 2, 3, ... without gaps.';
COMMENT ON COLUMN __schema__.events.xid IS 'The writing transaction (or, for a caller''s transaction that had an xid before it reached longrun, an xid taken after it did). Catch-up readers read each bucket in (xid, instance_id, seq) order from their checkpoint for that bucket, and only below a horizon no transaction still writing longrun rows can fall under (sql/queries/read_horizon.sql): an event committed late is read late, never skipped.';
COMMENT ON COLUMN __schema__.events.event_type IS 'The event type (InstanceStarted, JobCreated, MessageCorrelated, ...).';
COMMENT ON COLUMN __schema__.events.data IS 'The event as JSON, including its type.';
COMMENT ON COLUMN __schema__.events.recorded_at IS 'When it was recorded (engine clock).';

-- Catch-up readers (projections) read one bucket at a time after their checkpoint for it.
CREATE INDEX events_read_idx ON __schema__.events (bucket, xid, instance_id, seq);

CREATE TABLE __schema__.jobs (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    job_id        uuid        NOT NULL,
    instance_id   uuid        NOT NULL,
    step_id       text        NOT NULL,
    handler       text        NOT NULL,
    variables     jsonb       NOT NULL,
    attempts      integer     NOT NULL DEFAULT 0,
    run_at        timestamptz NOT NULL,
    lease_token   uuid,
    lease_owner   text,
    lease_expires_at timestamptz,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (bucket, job_id),
    CHECK ((lease_token IS NULL) = (lease_expires_at IS NULL))
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.jobs');
COMMENT ON TABLE __schema__.jobs IS
    'Work for in-process handlers: one row per service step entered. Claimed in batches with FOR UPDATE SKIP LOCKED under a lease; deleted in the transaction that records its completion. Small by design.';
COMMENT ON COLUMN __schema__.jobs.bucket IS 'bucket_of(job_id): its instance''s bucket, since longrun derives the id in it. Leads every key.';
COMMENT ON COLUMN __schema__.jobs.job_id IS 'The job id, also the handler''s idempotency key (stable across retries).';
COMMENT ON COLUMN __schema__.jobs.instance_id IS 'The instance waiting for it.';
COMMENT ON COLUMN __schema__.jobs.step_id IS 'The service step.';
COMMENT ON COLUMN __schema__.jobs.handler IS 'The handler name an engine must have registered to run it.';
COMMENT ON COLUMN __schema__.jobs.variables IS 'The instance variables when the step was entered: the handler''s input.';
COMMENT ON COLUMN __schema__.jobs.attempts IS 'How many times it was claimed.';
COMMENT ON COLUMN __schema__.jobs.run_at IS 'Not claimable before this time (engine clock).';
COMMENT ON COLUMN __schema__.jobs.lease_token IS 'Fencing token of the current claim; a completion must present it. NULL when unclaimed.';
COMMENT ON COLUMN __schema__.jobs.lease_owner IS 'Which engine holds the claim (for operators).';
COMMENT ON COLUMN __schema__.jobs.lease_expires_at IS 'When the claim lapses and another engine may take the job over.';
COMMENT ON COLUMN __schema__.jobs.created_at IS 'When the job was created (engine clock).';

-- Matches the claim query: unclaimed jobs by run_at (of the buckets of one partition or shard,
-- `bucket_groups`); lapsed claims are found through the second index.
CREATE INDEX jobs_claimable_idx ON __schema__.jobs (handler, run_at) WHERE lease_token IS NULL;
CREATE INDEX jobs_leased_idx ON __schema__.jobs (lease_expires_at) WHERE lease_token IS NOT NULL;
CREATE INDEX jobs_instance_idx ON __schema__.jobs (instance_id);

CREATE TABLE __schema__.outbox (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    xid          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    message_id   uuid        NOT NULL,
    instance_id  uuid        NOT NULL,
    seq          bigint      NOT NULL CHECK (seq > 0),
    topic        text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('command', 'event')),
    name         text        NOT NULL,
    key          text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (bucket, instance_id, message_id)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.outbox');
COMMENT ON TABLE __schema__.outbox IS
    'Outbound messages, written in the transaction of the transition that sends them. A durable log: consumers read each bucket in (xid, instance_id, seq) order from their checkpoint for that bucket (consumer_checkpoints).';
COMMENT ON COLUMN __schema__.outbox.bucket IS 'The instance''s bucket (bucket_of(instance_id)): leads every key.';
COMMENT ON COLUMN __schema__.outbox.xid IS 'The writing transaction (see events.xid).';
COMMENT ON COLUMN __schema__.outbox.message_id IS 'Stable message id: receivers deduplicate by it.';
COMMENT ON COLUMN __schema__.outbox.instance_id IS 'The sending instance.';
COMMENT ON COLUMN __schema__.outbox.seq IS 'The sequence number of the event that sent it in the instance''s stream (MessageSent, MilestoneReached): with xid and instance_id, the read order.';
COMMENT ON COLUMN __schema__.outbox.topic IS 'Where it goes: the recipient for a command, the message name for an event.';
COMMENT ON COLUMN __schema__.outbox.kind IS 'command (one recipient) or event (any listener).';
COMMENT ON COLUMN __schema__.outbox.name IS 'The message name, e.g. RetrievePayment.';
COMMENT ON COLUMN __schema__.outbox.key IS 'The message key (e.g. the order id), for correlating replies.';
COMMENT ON COLUMN __schema__.outbox.payload IS 'The payload (JSON).';
COMMENT ON COLUMN __schema__.outbox.created_at IS 'When it was written (engine clock).';

-- Consumers read one bucket at a time, by topic, after their checkpoint for that bucket.
CREATE INDEX outbox_read_idx ON __schema__.outbox (bucket, topic, xid, instance_id, seq);

CREATE TABLE __schema__.consumers (
    name          text        PRIMARY KEY,
    topics        text[]      NOT NULL,
    lease_owner   text,
    lease_expires_at timestamptz,
    updated_at    timestamptz NOT NULL
);
COMMENT ON TABLE __schema__.consumers IS
    'Outbox consumers: their topics and who reads them. One engine at a time holds a consumer (lease); its acknowledgement moves the checkpoints (consumer_checkpoints) and is fenced by the lease.';
COMMENT ON COLUMN __schema__.consumers.name IS 'The consumer name, e.g. payment.';
COMMENT ON COLUMN __schema__.consumers.topics IS 'The outbox topics it reads.';
COMMENT ON COLUMN __schema__.consumers.lease_owner IS 'Which engine or process reads it now.';
COMMENT ON COLUMN __schema__.consumers.lease_expires_at IS 'When that lease lapses.';
COMMENT ON COLUMN __schema__.consumers.updated_at IS 'Last acknowledgement or claim (engine clock).';

CREATE TABLE __schema__.consumer_checkpoints (
    bucket        smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    name          text        NOT NULL,
    last_xid      xid8        NOT NULL DEFAULT '0',
    last_instance uuid        NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    last_seq      bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, name, last_xid, last_instance, last_seq)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.consumer_checkpoints');
-- Each move replaces a bucket's row, so the primary key holds an entry per move of which one is
-- live until vacuum removes the rest (and none is removed while another transaction stays
-- open). Readers take the greatest entry (ORDER BY the key DESC LIMIT 1); with one row per
-- bucket in its statistics the planner would rather fetch every entry of the bucket and sort
-- them (88,000 buffers for one read of 256 buckets after a minute of the messages workload
-- under a held transaction, against 1,000). Declaring `bucket` a single value (on the table
-- and each partition; the first ANALYZE of its rows applies it) makes the backward index scan
-- the cheaper.
DO $$
DECLARE r regclass;
BEGIN
    FOR r IN SELECT '__schema__.consumer_checkpoints'::regclass
             UNION SELECT relid FROM pg_partition_tree('__schema__.consumer_checkpoints') LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN bucket SET (n_distinct = 1)', r);
    END LOOP;
END $$;
COMMENT ON TABLE __schema__.consumer_checkpoints IS
    'Where each consumer stands in each bucket of the outbox: every message of the bucket at or before (last_xid, last_instance, last_seq) is acknowledged. One live row per consumer and bucket, made with the consumer; a move deletes it and inserts the next (the position is in the key, never updated in place), and readers take the greatest of a bucket (ORDER BY the key DESC LIMIT 1), so the versions a long-running transaction keeps from being pruned are never walked; no order across buckets is assumed.';
COMMENT ON COLUMN __schema__.consumer_checkpoints.bucket IS 'The outbox bucket.';
COMMENT ON COLUMN __schema__.consumer_checkpoints.name IS 'The consumer (consumers.name).';
COMMENT ON COLUMN __schema__.consumer_checkpoints.last_xid IS 'Checkpoint: xid of the last acknowledged message of the bucket (0: none yet).';
COMMENT ON COLUMN __schema__.consumer_checkpoints.last_instance IS 'Checkpoint: its sending instance.';
COMMENT ON COLUMN __schema__.consumer_checkpoints.last_seq IS 'Checkpoint: its seq.';

CREATE TABLE __schema__.inbox (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    message_id   text        NOT NULL,
    name         text        NOT NULL,
    key          text        NOT NULL,
    payload      jsonb       NOT NULL,
    status       text        NOT NULL CHECK (status IN ('received', 'buffered', 'correlated', 'started', 'dead')),
    instance_id  uuid,
    reason       text,
    received_at  timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    processed_at timestamptz,
    CHECK ((status = 'dead') = (reason IS NOT NULL)),
    PRIMARY KEY (bucket, message_id),
    CHECK ((status IN ('correlated', 'started')) = (instance_id IS NOT NULL))
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.inbox');
COMMENT ON TABLE __schema__.inbox IS
    'Every inbound message, by id: a second delivery of the same id is a duplicate and changes nothing. Messages nobody waits for yet stay buffered until their expiry, then become dead letters with a reason.';
COMMENT ON COLUMN __schema__.inbox.bucket IS 'The bucket of its correlation key, bucket_of_key(key): the instances started with that business key are in it. Message ids are deduplicated within a bucket.';
COMMENT ON COLUMN __schema__.inbox.message_id IS 'The sender''s message id: the deduplication key.';
COMMENT ON COLUMN __schema__.inbox.name IS 'The message name, e.g. PaymentReceived.';
COMMENT ON COLUMN __schema__.inbox.key IS 'The correlation key (e.g. the order id).';
COMMENT ON COLUMN __schema__.inbox.payload IS 'The payload (JSON).';
COMMENT ON COLUMN __schema__.inbox.status IS 'buffered (waiting for an instance), correlated (delivered to instance_id), started (started instance_id) or dead (see reason). A message is inserted as received and settled in the same transaction, so received is never committed: only messages that are really kept enter the buffered indexes (a row that passed through them would leave an index entry each that vacuum must remove, and cannot while another transaction stays open).';
COMMENT ON COLUMN __schema__.inbox.instance_id IS 'The instance it was delivered to or started.';
COMMENT ON COLUMN __schema__.inbox.reason IS 'Why it is a dead letter.';
COMMENT ON COLUMN __schema__.inbox.received_at IS 'When it arrived (engine clock).';
COMMENT ON COLUMN __schema__.inbox.expires_at IS 'A buffered message is taken until this time, then dead-lettered.';
COMMENT ON COLUMN __schema__.inbox.processed_at IS 'When it was correlated, started an instance or was dead-lettered.';

-- A message by its id alone, for an operator who has only the id; longrun's own statements
-- name the key's bucket too and use the primary key.
CREATE INDEX inbox_message_idx ON __schema__.inbox (message_id);
CREATE INDEX inbox_buffered_idx ON __schema__.inbox (bucket, name, key, received_at) WHERE status = 'buffered';
CREATE INDEX inbox_expiry_idx ON __schema__.inbox (expires_at) WHERE status = 'buffered';

CREATE TABLE __schema__.subscriptions (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    instance_id  uuid        NOT NULL,
    step_id      text        NOT NULL,
    message_name text        NOT NULL,
    correlation_key text     NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (bucket, instance_id, step_id, message_name)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.subscriptions');
COMMENT ON TABLE __schema__.subscriptions IS
    'Who waits for which message: one row per message a waiting step listens for (its own, and boundary messages that end the wait another way). Added and removed in the transactions that start and end the wait.';
COMMENT ON COLUMN __schema__.subscriptions.bucket IS 'The bucket of its correlation key (bucket_of_key), where the message it waits for is looked up; for a keyless wait, the instance''s bucket.';
COMMENT ON COLUMN __schema__.subscriptions.instance_id IS 'The waiting instance.';
COMMENT ON COLUMN __schema__.subscriptions.step_id IS 'The step it waits at.';
COMMENT ON COLUMN __schema__.subscriptions.message_name IS 'The message name it waits for.';
COMMENT ON COLUMN __schema__.subscriptions.correlation_key IS 'The key the message must carry.';
COMMENT ON COLUMN __schema__.subscriptions.created_at IS 'Since when it waits (engine clock).';

-- An instance's waits, read by instance (subscriptions_of_instance; every bucket): see
-- instances_id_idx. Ended waits are deleted through the primary key, in the buckets of their
-- keys (subscriptions_delete).
CREATE INDEX subscriptions_instance_idx ON __schema__.subscriptions (instance_id, step_id);
CREATE INDEX subscriptions_message_idx ON __schema__.subscriptions (message_name, correlation_key);
