-- Throws signals (a batch of transitions' signal steps, or Engine::signal): each is delivered
-- afterwards in chunks (signals_open.sql, signal_receivers.sql, signal_advance.sql).
INSERT INTO __schema__.signals (signal_id, name, payload, thrown_at, thrown_by)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::timestamptz[], $5::uuid[])
ON CONFLICT (signal_id) DO NOTHING
