//! Metrics and traces.
//!
//! longrun records metrics through the [`metrics`](https://docs.rs/metrics) facade: they go to
//! whatever recorder the application installs (Prometheus, StatsD, OpenTelemetry, ...) and
//! cost next to nothing without one. `longrun run --metrics-listen ADDR` installs a Prometheus
//! recorder and serves `GET /metrics`; in your own service, install one yourself (for example
//! `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`) and serve its
//! handle's `render()` where your metrics live.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `longrun_transitions_total` | counter | `process` | inputs applied to instances (starts, job results, messages, timers, operator actions) |
//! | `longrun_events_appended_total` | counter | | events appended to instance streams |
//! | `longrun_transition_batch_size` | histogram | | inputs applied per transaction |
//! | `longrun_instances_ended_total` | counter | `process`, `status` | instances that completed, failed or were cancelled |
//! | `longrun_handler_duration_seconds` | histogram | `handler`, `outcome` (`ok`, `error`, `panic`) | handler run time |
//! | `longrun_claim_batch_size` | histogram | | jobs taken per claim |
//! | `longrun_outbox_lag_seconds` | histogram | `consumer` | from a message's commit (engine clock) to its delivery to a subscriber |
//! | `longrun_timer_lateness_seconds` | histogram | | from a timer's due time to its firing |
//! | `longrun_messages_received_total` | counter | `outcome` (`started`, `correlated`, `buffered`, `dead`, `duplicate`) | inbound messages |
//! | `longrun_projection_events_total` | counter | `projection` | events a projection looked at |
//! | `longrun_retention_removed_total` | counter | `table` | rows the engine's background retention removed (history past its retention period, messages past their windows) |
//! | `longrun_set_aside_total` | counter | `kind` (`job`, `timer`, `message`) | inputs the engine could not apply (it panicked or the database refused what they wrote), set aside as an incident, a failed instance or an error to the caller so that the rest went on |
//! | `longrun_worker_restarts_total` | counter | `worker` | workers started again after a panic |
//!
//! Traces: spans through [`tracing`]: `transition` (fields `instance_id`, `process`,
//! `version`, `step`: the step the instance is at after the transition), `handler`
//! (`instance_id`, `process`, `version`, `step`, `handler`, `job_id`, `attempt`) around each
//! handler run, and `delivery` (`consumer`, `message_id`, `name`, `instance_id`: the sending
//! instance) around each outbox message handed to a subscriber. Transition spans are at DEBUG
//! level, the others at INFO. Each also has `trace_key` and `traceparent`: the trace of the
//! instance (for `delivery`, the one the message was sent under), the same in every context an
//! order's work crosses (see [`Message::trace`](crate::Message::trace)).
//!
//! With the feature `opentelemetry`, those spans get the traceparent as their remote parent
//! through [`tracing-opentelemetry`](https://docs.rs/tracing-opentelemetry): install its layer
//! (`tracing_opentelemetry::layer().with_tracer(..)`) with the exporter of your choice, and one
//! order's transitions, handler runs and deliveries in every context form one trace.

/// Give `span` the W3C `traceparent` as its OpenTelemetry parent (feature `opentelemetry`;
/// without it, or for a span no layer records, nothing). Call before the span is entered.
pub(crate) fn link(span: &tracing::Span, traceparent: Option<&str>) {
    #[cfg(feature = "opentelemetry")]
    if let Some(cx) = traceparent.and_then(remote_parent) {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        // A span filtered out, or no OpenTelemetry layer: nothing to link.
        let _ = span.set_parent(cx);
    }
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, traceparent);
}

/// The OpenTelemetry context of a remote parent named by a W3C `traceparent`
/// (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`); `None` if it is malformed.
#[cfg(feature = "opentelemetry")]
pub fn remote_parent(traceparent: &str) -> Option<opentelemetry::Context> {
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    let mut parts = traceparent.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || parent.len() != 16 || flags.len() != 2 {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(parent).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    context
        .is_valid()
        .then(|| opentelemetry::Context::new().with_remote_span_context(context))
}

/// Inputs applied to instances.
pub const TRANSITIONS: &str = "longrun_transitions_total";
/// Events appended.
pub const EVENTS_APPENDED: &str = "longrun_events_appended_total";
/// Inputs per transaction.
pub const TRANSITION_BATCH: &str = "longrun_transition_batch_size";
/// Instances ended.
pub const INSTANCES_ENDED: &str = "longrun_instances_ended_total";
/// Handler run time.
pub const HANDLER_DURATION: &str = "longrun_handler_duration_seconds";
/// Jobs per claim.
pub const CLAIM_BATCH: &str = "longrun_claim_batch_size";
/// Outbox lag at delivery.
pub const OUTBOX_LAG: &str = "longrun_outbox_lag_seconds";
/// Timer lateness at firing.
pub const TIMER_LATENESS: &str = "longrun_timer_lateness_seconds";
/// Inbound messages by outcome.
pub const MESSAGES_RECEIVED: &str = "longrun_messages_received_total";
/// Events a projection looked at.
pub const PROJECTION_EVENTS: &str = "longrun_projection_events_total";
/// Rows removed by background retention.
pub const RETENTION_REMOVED: &str = "longrun_retention_removed_total";

/// Inputs set aside because they could not be applied.
pub const SET_ASIDE: &str = "longrun_set_aside_total";
/// Workers started again after a panic.
pub const WORKER_RESTARTS: &str = "longrun_worker_restarts_total";

/// Describe every metric to the installed recorder (units and help texts).
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(TRANSITIONS, "Inputs applied to instances.");
    describe_counter!(EVENTS_APPENDED, "Events appended to instance streams.");
    describe_histogram!(
        TRANSITION_BATCH,
        Unit::Count,
        "Inputs applied per transaction."
    );
    describe_counter!(INSTANCES_ENDED, "Instances that ended, by status.");
    describe_histogram!(HANDLER_DURATION, Unit::Seconds, "Handler run time.");
    describe_histogram!(CLAIM_BATCH, Unit::Count, "Jobs taken per claim.");
    describe_histogram!(OUTBOX_LAG, Unit::Seconds, "Outbox message age at delivery.");
    describe_histogram!(TIMER_LATENESS, Unit::Seconds, "Timer lateness at firing.");
    describe_counter!(MESSAGES_RECEIVED, "Inbound messages, by outcome.");
    describe_counter!(PROJECTION_EVENTS, "Events a projection looked at.");
    describe_counter!(
        RETENTION_REMOVED,
        "Rows removed by background retention, by table."
    );
    describe_counter!(
        SET_ASIDE,
        "Inputs set aside because they could not be applied."
    );
    describe_counter!(WORKER_RESTARTS, "Workers started again after a panic.");
}

/// Seconds between two instants, for histograms (negative differences count as 0).
pub(crate) fn seconds(
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
) -> f64 {
    ((to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6).max(0.0)
}
