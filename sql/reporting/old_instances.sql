-- Running instances started longer ago than a threshold, oldest first, as JSON objects.
SELECT row_to_json(v)::text AS doc
FROM (SELECT * FROM __schema__.report_old_instances
      WHERE started_at < now() - $2::text::interval ORDER BY 1 LIMIT $1) v
