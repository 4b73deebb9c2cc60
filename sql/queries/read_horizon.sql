-- The read horizon of catch-up readers (outbox consumers, projections): every events or
-- outbox row with xid below it is committed or rolled back for good, so a reader that reads
-- only below it, in a later statement, never skips a row whose transaction commits late.
--
-- It is the next transaction id to be assigned, lowered to the xid of every other transaction
-- that holds a lock on a relation of this schema (any mode, granted or waiting). A longrun
-- transaction touches one of its tables before it gets an xid (so it is either counted here
-- or gets an xid at or above the next one); a caller's transaction that had an xid before it
-- reached longrun (start_tx, send_tx after writing elsewhere) writes its rows with an xid
-- taken after it locked a longrun table, never with its own. Transactions that never touch
-- this schema (another application's open transaction, in this database or another one) do
-- not hold the horizon back: that is the difference from the snapshot's xmin.
--
-- pg_locks gives 32-bit xids; each is widened to xid8 in the epoch of the snapshot's xmax
-- `n`, the one within 2^31 of it (a running transaction's xid may be above `n`, which is the
-- latest completed xid + 1, or below it).
WITH next AS (
    SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS n
),
holders AS (
    SELECT DISTINCT l.virtualtransaction
    FROM pg_locks l
    WHERE l.locktype = 'relation'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.relation IN (SELECT c.oid FROM pg_class c
                         JOIN pg_namespace s ON s.oid = c.relnamespace
                         WHERE s.nspname = '__schema_name__')
      AND l.pid IS DISTINCT FROM pg_backend_pid()
),
xids AS (
    SELECT x.transactionid::text::bigint AS x32
    FROM pg_locks x
    JOIN holders h USING (virtualtransaction)
    WHERE x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
)
SELECT least(
           n,
           (SELECT min(CASE
                           WHEN x32 > lo + 2147483648 THEN n - lo + x32 - 4294967296
                           WHEN x32 < lo - 2147483648 THEN n - lo + x32 + 4294967296
                           ELSE n - lo + x32
                       END)
            FROM xids)
       ) AS horizon
FROM (SELECT n, n % 4294967296 AS lo FROM next) AS next
