//! Fencing: an engine stopped (SIGSTOP) past its job lease, then continued, commits nothing for
//! the work another engine took over.

use std::process::{Command, Stdio};
use std::time::Duration as StdDuration;

use futures_util::StreamExt;
use serde_json::json;

use crate::common::{client, TestDb};
use longrun::store::pg_config;
use longrun::{Engine, EngineConfig, JobContext, ProcessDefinition, StartRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_stopped_past_its_lease_commits_nothing_for_the_work_it_lost() {
    let db = TestDb::new().await;
    let def = ProcessDefinition::builder("fenced")
        .service("work", "slow")
        .end("done")
        .build()
        .unwrap();
    let starter = client(&db.store);
    starter.deploy(&def).await.unwrap();

    // Hear the stopped engine's handler start.
    let (listener, mut connection) = pg_config(None).unwrap().connect().await.unwrap();
    let (tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx.send(n.payload().to_string());
            }
        }
    });
    listener
        .batch_execute("LISTEN fence_started")
        .await
        .unwrap();

    let mut engine_a = Command::new(env!("CARGO_BIN_EXE_longrun-chaos"))
        .args([
            "fence-worker",
            "--schema",
            db.schema(),
            "--hold-ms",
            "1500",
            "--lease-ms",
            "500",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let id = starter
        .start(StartRequest::new("fenced", "k"))
        .await
        .unwrap();
    let job = tokio::time::timeout(StdDuration::from_secs(30), started.recv())
        .await
        .expect("engine A runs the handler")
        .unwrap();

    // Engine A stops mid-handler, holding a lease of 500 ms.
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &engine_a.id().to_string()])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");

    // Engine B takes the job over once the lease lapses; its handler holds the job (and B's
    // lease) until engine A has had its go.
    let (b_started_tx, mut b_started) = tokio::sync::mpsc::unbounded_channel();
    let release_b = std::sync::Arc::new(tokio::sync::Notify::new());
    let engine_b = Engine::builder(db.store.clone())
        .config(EngineConfig {
            poll_interval: StdDuration::from_millis(20),
            maintenance_interval: StdDuration::from_millis(50),
            ..EngineConfig::default()
        })
        .handler("slow", {
            let release_b = release_b.clone();
            move |_: JobContext| {
                let (tx, release) = (b_started_tx.clone(), release_b.clone());
                async move {
                    let _ = tx.send(());
                    release.notified().await;
                    Ok(json!({"by": "engine B"}))
                }
            }
        })
        .build()
        .unwrap();
    let mut ended = engine_b.subscribe_ended();
    let running_b = engine_b.run();
    tokio::time::timeout(StdDuration::from_secs(30), b_started.recv())
        .await
        .expect("engine B takes the lapsed job over")
        .unwrap();

    // Engine A goes on: its handler finishes and it tries to record the result under its lost
    // lease while B holds the job; then it shuts down (which waits for that attempt).
    signal("-CONT");
    signal("-TERM");
    let status = tokio::task::spawn_blocking(move || engine_a.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "engine A exited cleanly: {status:?}");
    assert_eq!(
        db.count("events", "WHERE event_type = 'JobCompleted'")
            .await,
        0,
        "engine A recorded nothing"
    );
    release_b.notify_one();
    crate::common::wait_ended(&mut ended, &[id]).await;
    running_b.shutdown().await;

    let history = db.store.history(id).await.unwrap();
    let completed: Vec<_> = history
        .iter()
        .filter(|h| h.event_type == "JobCompleted")
        .collect();
    assert_eq!(completed.len(), 1, "{history:?}");
    assert_eq!(completed[0].data["job_id"], json!(job));
    assert_eq!(completed[0].data["set"], json!({"by": "engine B"}));
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.variables["by"], json!("engine B"));
    assert_eq!(history.last().unwrap().event_type, "InstanceCompleted");
    assert_eq!(db.count("jobs", "").await, 0);
}
