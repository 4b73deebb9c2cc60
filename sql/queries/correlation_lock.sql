-- Serializes delivery and subscription of one (message name, key) pair, so that a message
-- arriving while an instance starts waiting for it is neither missed nor taken twice.
-- Keys come sorted; locks are taken in that order.
SELECT pg_advisory_xact_lock(hashtextextended(k, 0))
FROM unnest($1::text[]) WITH ORDINALITY AS t(k, i)
ORDER BY i
