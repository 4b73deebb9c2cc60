-- One reporting view's rows as JSON objects, ordered by its first two columns (the view name
-- is checked against the known views before it is put into `__view__`).
SELECT row_to_json(v)::text AS doc
FROM (SELECT * FROM __schema__.__view__ ORDER BY 1, 2 LIMIT $1) v
