-- Adds the next version of a process. $7: its retention period in milliseconds, if it
-- declares one; $8: the signal it starts on, if any; $9: every message it starts on.
INSERT INTO __schema__.definitions
    (process_id, version, checksum, document, start_message, receives, deployed_at, retention,
     start_signal, start_messages)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6,
       justify_interval(make_interval(secs => $7::bigint / 1000.0)), $8, $9
FROM __schema__.definitions WHERE process_id = $1
RETURNING version
