//! Metrics reach an installed recorder under their documented names.

use std::sync::OnceLock;

use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::{Engine, JobContext, Message, ProcessDefinition, StartRequest};

fn recorder() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("the only recorder of this test binary");
        longrun::telemetry::describe();
        handle
    })
}

/// The value of a counter (or a histogram's `_count`) with these labels, if present.
fn value(text: &str, name: &str, labels: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(labels))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .next()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_an_installed_recorder() {
    let handle = recorder();
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .handler("metered_work", |job: JobContext| async move {
            Ok(json!({ "attempt": job.attempt }))
        })
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("metered")
        .service("work", "metered_work")
        .receive("wait", "MeteredGo")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let ids = engine
        .start_many(
            (0..5)
                .map(|i| StartRequest::new("metered", format!("m{i}")))
                .collect(),
        )
        .await
        .unwrap();
    crate::common::eventually("every instance waits for its message", || async {
        db.count("subscriptions", "").await == 5
    })
    .await;
    for i in 0..5 {
        engine
            .send(Message::new(
                "MeteredGo",
                format!("m{i}"),
                format!("go-{i}"),
            ))
            .await
            .unwrap();
    }
    wait_ended(&mut ended, &ids).await;
    running.shutdown().await;

    let text = handle.render();
    let at_least = |name: &str, labels: &str, n: f64| {
        let v = value(&text, name, labels)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in:\n{text}"));
        assert!(v >= n, "{name}{{{labels}}} = {v}, expected at least {n}");
    };
    // Starts, job results and messages: three inputs per instance.
    at_least("longrun_transitions_total", "process=\"metered\"", 15.0);
    at_least(
        "longrun_instances_ended_total",
        "process=\"metered\",status=\"completed\"",
        5.0,
    );
    at_least(
        "longrun_handler_duration_seconds_count",
        "handler=\"metered_work\",outcome=\"ok\"",
        5.0,
    );
    at_least(
        "longrun_messages_received_total",
        "outcome=\"correlated\"",
        5.0,
    );
    at_least("longrun_events_appended_total", "", 1.0);
    at_least("longrun_transition_batch_size_count", "", 1.0);
    assert!(text.contains("# HELP longrun_handler_duration_seconds Handler run time."));
}
