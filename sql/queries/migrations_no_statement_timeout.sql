-- Migrations may build indexes on large tables: the pool's statement_timeout does not apply
-- to their transaction. Nor does lock_timeout while the migration lock is awaited: another
-- process applying migrations holds it for as long as they take (seconds for the partitioned
-- layout's partitions on a busy server), and every engine starting at once waits for it.
-- `migrations_lock_timeout.sql` puts lock_timeout back once the lock is held, so DDL never
-- queues behind a long lock and blocks everyone else.
SET LOCAL statement_timeout = 0;
SET LOCAL lock_timeout = 0
