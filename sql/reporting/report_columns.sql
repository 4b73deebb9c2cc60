-- The columns of a reporting view, in order (for printing it as a table).
SELECT a.attname FROM pg_attribute a
WHERE a.attrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
