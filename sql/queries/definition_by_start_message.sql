-- The processes whose latest version starts on this message, with the version's rule for a
-- business key already running (`return_existing`, `refuse` or NULL: none).
SELECT process_id, version, unique_key FROM (
    SELECT DISTINCT ON (process_id) process_id, version, start_messages,
           document->>'unique_business_key' AS unique_key
    FROM __schema__.definitions
    ORDER BY process_id, version DESC
) latest
WHERE start_messages @> ARRAY[$1::text]
ORDER BY process_id
