-- Migrations may build indexes on large tables: the pool's statement_timeout does not apply
-- to their transaction (lock_timeout still does, so DDL never queues behind a long lock and
-- blocks everyone else).
SET LOCAL statement_timeout = 0
