-- How many lock rows nobody took since $1 retention would delete now (a dry run).
SELECT count(*) AS locks FROM __schema__.locks WHERE taken_at < $1
