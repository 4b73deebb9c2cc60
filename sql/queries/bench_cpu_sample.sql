-- Bench: this backend's process id (to find the server's processes on this host) and the
-- cluster's WAL insert position in bytes, as text (numeric has no Rust type here).
SELECT pg_backend_pid(), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::text
