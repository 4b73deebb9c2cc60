-- Instance counts by status for one process.
SELECT status, count(*) AS n FROM __schema__.instances WHERE process_id = $1 GROUP BY status
