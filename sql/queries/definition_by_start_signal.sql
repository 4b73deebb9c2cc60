-- The processes whose latest version starts on this signal.
SELECT process_id, version FROM (
    SELECT DISTINCT ON (process_id) process_id, version, start_signal
    FROM __schema__.definitions
    ORDER BY process_id, version DESC
) latest
WHERE start_signal = $1
ORDER BY process_id
