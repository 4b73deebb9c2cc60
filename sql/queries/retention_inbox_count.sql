-- How many inbound messages the deduplication window would forget now (a dry run).
SELECT count(*) AS messages FROM __schema__.inbox
WHERE status <> 'buffered' AND received_at < $1
