-- Bench: make this backend's pending statistics visible (PostgreSQL 15+).
SELECT pg_stat_force_next_flush();
