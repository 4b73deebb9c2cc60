-- An engine that stops gives its buckets back at once: the others see it gone at their next
-- renewal.
DELETE FROM __schema__.engines WHERE owner = $1
