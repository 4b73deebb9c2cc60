-- Signals, newest first: what was thrown and how far each broadcast got.
SELECT signal_id, name, payload, thrown_at, thrown_by, delivered, finished_at
FROM __schema__.signals
ORDER BY thrown_at DESC
LIMIT $1
