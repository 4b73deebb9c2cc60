-- A wake-up hint for engines listening on this schema: new jobs or outbox messages exist.
-- Carries no data; receivers look in the tables. Sent once per transaction, never per row.
SELECT pg_notify($1, '')
