-- Traces across contexts: every outbound message carries the trace it was sent under (the
-- sending instance's: its trace key, by default the business key, and a W3C traceparent),
-- so a bridge hands it on and the instance it starts in another context continues it.
ALTER TABLE __schema__.outbox ADD COLUMN trace_key text, ADD COLUMN traceparent text;
COMMENT ON COLUMN __schema__.outbox.trace_key IS 'The trace key it was sent under (the sending instance''s, e.g. the order id); null for messages written before traces were kept.';
COMMENT ON COLUMN __schema__.outbox.traceparent IS 'The W3C trace context it was sent under (00-<trace id>-<parent id>-<flags>).';
