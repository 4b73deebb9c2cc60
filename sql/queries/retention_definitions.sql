-- Every process version with its retention period in milliseconds (NULL: the engine's
-- default), for a retention pass.
SELECT process_id, version,
       (extract(epoch FROM retention) * 1000)::bigint AS retention_ms
FROM __schema__.definitions
ORDER BY process_id, version
