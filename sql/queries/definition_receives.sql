-- Whether any deployed version starts on or waits for a message with this name.
SELECT EXISTS (SELECT 1 FROM __schema__.definitions WHERE $1::text = ANY (receives)) AS known
