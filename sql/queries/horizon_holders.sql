-- The transactions that hold the read horizon back (`longrun projections`): other sessions
-- with an xid that hold a lock on a relation of this schema, oldest first, with what
-- pg_stat_activity says of them. One left open delays delivery and projections until it ends.
SELECT DISTINCT ON (a.pid)
       a.pid,
       coalesce(a.application_name, '') AS application_name,
       coalesce(a.usename::text, '') AS user_name,
       coalesce(a.state, '') AS state,
       a.xact_start,
       a.backend_xid::text AS xid,
       left(coalesce(a.query, ''), 200) AS last_query
FROM pg_locks l
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation IN (SELECT c.oid FROM pg_class c
                     JOIN pg_namespace s ON s.oid = c.relnamespace
                     WHERE s.nspname = '__schema_name__')
  AND l.pid <> pg_backend_pid()
  AND a.backend_xid IS NOT NULL
ORDER BY a.pid, a.xact_start
