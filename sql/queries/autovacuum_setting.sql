-- Whether the server runs autovacuum: without it, rows that longrun deletes (jobs,
-- subscriptions and timers as they end, history that retention removes) stay as dead tuples
-- and the tables keep growing unless someone runs VACUUM.
SELECT current_setting('autovacuum')::boolean AS autovacuum
