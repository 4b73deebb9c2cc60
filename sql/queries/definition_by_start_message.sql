-- The processes whose latest version starts on this message, with the version's rule for a
-- business key already running (`return_existing`, `refuse` or NULL: none).
SELECT process_id, version, unique_key FROM (
    SELECT DISTINCT ON (process_id) process_id, version, start_message,
           document->>'unique_business_key' AS unique_key
    FROM __schema__.definitions
    ORDER BY process_id, version DESC
) latest
WHERE start_message = $1
ORDER BY process_id
