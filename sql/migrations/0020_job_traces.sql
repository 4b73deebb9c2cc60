-- Each job keeps its instance's trace, so the handler's span continues it (and, with
-- OpenTelemetry, joins the instance's trace across contexts).
ALTER TABLE __schema__.jobs ADD COLUMN trace_key text, ADD COLUMN traceparent text;
COMMENT ON COLUMN __schema__.jobs.trace_key IS 'The instance''s trace key (e.g. the order id); null for instances without a trace.';
COMMENT ON COLUMN __schema__.jobs.traceparent IS 'The instance''s W3C trace context (00-<trace id>-<parent id>-<flags>).';
