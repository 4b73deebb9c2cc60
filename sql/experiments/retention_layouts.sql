-- Retention by batched deletes against retention by partitions, measured on the same rows.
--
-- Run with psql on a scratch database (it creates and drops the schema retention_experiment):
--   psql -X -v ON_ERROR_STOP=1 -v instances=50000 -f sql/experiments/retention_layouts.sql
-- Each ended instance has 20 events of about 350 bytes, like the order example.
--
-- A. One events table; retention deletes ended instances' events in batches of 500 instances,
--    one transaction each (what longrun does).
-- B. Hot and cold: events are written to a hot table (an instance's end is unknown when it
--    starts, so they cannot go to a partition by end date); when an instance ends, its events
--    are moved to the cold table partitioned by end day (insert + delete, in the transaction
--    that ends it, here in batches of 500 instances); retention drops a day's partition.
-- The figures are time and WAL bytes for each phase, printed by \timing and the WAL deltas.

\timing on
DROP SCHEMA IF EXISTS retention_experiment CASCADE;
CREATE SCHEMA retention_experiment;
SET search_path = retention_experiment;

CREATE TABLE ended (instance_id uuid PRIMARY KEY, ended_day date NOT NULL);
INSERT INTO ended SELECT gen_random_uuid(), date '2026-01-01' FROM generate_series(1, :instances);

CREATE TABLE events_a (
    instance_id uuid, seq bigint, event_type text, data jsonb, recorded_at timestamptz,
    PRIMARY KEY (instance_id, seq));
CREATE TABLE events_hot (LIKE events_a INCLUDING ALL);
CREATE TABLE events_cold (
    instance_id uuid, seq bigint, event_type text, data jsonb, recorded_at timestamptz,
    ended_day date NOT NULL, PRIMARY KEY (ended_day, instance_id, seq))
    PARTITION BY RANGE (ended_day);
CREATE TABLE events_cold_20260101 PARTITION OF events_cold
    FOR VALUES FROM ('2026-01-01') TO ('2026-01-02');

-- The same rows in A and in B's hot table.
INSERT INTO events_a
SELECT e.instance_id, s, 'StepDone',
       jsonb_build_object('type', 'StepDone', 'step', 'step_' || s, 'at', now(),
                          'payload', repeat('x', 250)), now()
FROM ended e, generate_series(1, 20) s;
INSERT INTO events_hot SELECT * FROM events_a;
CHECKPOINT;
VACUUM ANALYZE;

CREATE PROCEDURE delete_batched() LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
    LOOP
        WITH doomed AS (SELECT instance_id FROM ended WHERE NOT EXISTS (
                            SELECT 1 FROM done_a d WHERE d.instance_id = ended.instance_id)
                        LIMIT 500),
             marked AS (INSERT INTO done_a SELECT instance_id FROM doomed RETURNING 1),
             gone AS (DELETE FROM events_a e USING doomed d WHERE e.instance_id = d.instance_id
                      RETURNING 1)
        SELECT count(*) INTO n FROM marked;
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END $$;

CREATE PROCEDURE move_batched() LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
    LOOP
        WITH doomed AS (SELECT instance_id, ended_day FROM ended WHERE NOT EXISTS (
                            SELECT 1 FROM done_b d WHERE d.instance_id = ended.instance_id)
                        LIMIT 500),
             marked AS (INSERT INTO done_b SELECT instance_id FROM doomed RETURNING 1),
             moved AS (DELETE FROM events_hot e USING doomed d
                       WHERE e.instance_id = d.instance_id
                       RETURNING e.*, d.ended_day),
             cold AS (INSERT INTO events_cold SELECT * FROM moved RETURNING 1)
        SELECT count(*) INTO n FROM marked;
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END $$;
CREATE TABLE done_a (instance_id uuid PRIMARY KEY);
CREATE TABLE done_b (instance_id uuid PRIMARY KEY);

\echo '== A: batched deletes (retention)'
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
CALL delete_batched();
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')) AS a_delete_wal;
\echo '== A: vacuum of what the deletes left'
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
VACUUM events_a;
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')) AS a_vacuum_wal;

\echo '== B: moving ended instances from hot to cold (at each end)'
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
CALL move_batched();
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')) AS b_move_wal;
\echo '== B: vacuum of the hot table'
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
VACUUM events_hot;
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')) AS b_vacuum_wal;
\echo '== B: dropping the day (retention)'
SELECT pg_current_wal_insert_lsn() AS lsn0 \gset
ALTER TABLE events_cold DETACH PARTITION events_cold_20260101;
DROP TABLE events_cold_20260101;
SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0')) AS b_drop_wal;

RESET search_path;
DROP SCHEMA retention_experiment CASCADE;
