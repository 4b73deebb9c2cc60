use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::common::{client, eventually, wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{
    Engine, EngineConfig, HandlerError, JobContext, ManualClock, ProcessDefinition, StartRequest,
};

fn three_steps() -> ProcessDefinition {
    ProcessDefinition::builder("three")
        .service("one", "step")
        .output("one")
        .service("two", "step")
        .output("two")
        .service("three", "step")
        .output("three")
        .end("done")
        .build()
        .unwrap()
}

fn fast_config() -> EngineConfig {
    EngineConfig {
        poll_interval: StdDuration::from_millis(20),
        maintenance_interval: StdDuration::from_millis(20),
        ..EngineConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_steps_run_and_their_results_are_mapped() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .config(fast_config())
        .handler("step", |job: JobContext| async move {
            Ok(json!({ "step": job.step, "attempt": job.attempt, "saw": job.variables.as_object().map(|m| m.len()) }))
        })
        .build()
        .unwrap();
    engine.deploy(&three_steps()).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let ids = engine
        .start_many(
            (0..50)
                .map(|i| StartRequest::new("three", format!("k{i}")).variables(json!({"n": i})))
                .collect(),
        )
        .await
        .unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
    let view = db.store.instance(ids[7]).await.unwrap();
    assert_eq!(view.variables["n"], json!(7));
    assert_eq!(
        view.variables["one"],
        json!({"step": "one", "attempt": 1, "saw": 1})
    );
    assert_eq!(
        view.variables["three"],
        json!({"step": "three", "attempt": 1, "saw": 3})
    );
    assert_eq!(db.count("jobs", "").await, 0);
    // Streams are contiguous: seq runs 1..=n for every instance.
    let gaps = db
        .scalar("SELECT count(*) FROM (SELECT instance_id FROM {schema}.events GROUP BY instance_id HAVING max(seq) <> count(*) OR min(seq) <> 1) g")
        .await;
    assert_eq!(gaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_handler_is_retried_with_backoff_then_raises_an_incident_an_operator_retries() {
    let db = TestDb::new().await;
    let attempts: Arc<Mutex<Vec<i32>>> = Arc::default();
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let engine = {
        let attempts = attempts.clone();
        Engine::builder(db.store.clone())
            .clock(Arc::new(clock.clone()))
            .config(fast_config())
            .handler("step", move |job: JobContext| {
                let attempts = attempts.clone();
                async move {
                    if job.step != "two" || job.variables["fixed"] == json!(true) {
                        return Ok(Value::Null);
                    }
                    attempts.lock().unwrap().push(job.attempt);
                    Err(HandlerError::new("warehouse on fire"))
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("three")
        .service("one", "step")
        .service("two", "step")
        .retry(longrun::definition::RetryPolicy::new(3, "PT10S"))
        .service("three", "step")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine.start(StartRequest::new("three", "k")).await.unwrap();

    // Attempt 1 fails at once; attempt 2 is due 10 s later, attempt 3 20 s after that.
    let count = || async { attempts.lock().unwrap().len() };
    eventually("attempt 1", || async { count().await == 1 }).await;
    eventually("retry scheduled", || async {
        db.count("events", "WHERE event_type = 'JobRetryScheduled'")
            .await
            == 1
    })
    .await;
    clock.advance(Duration::seconds(9));
    tokio::task::yield_now().await;
    assert_eq!(count().await, 1, "not before the backoff");
    clock.advance(Duration::seconds(1));
    eventually("attempt 2", || async { count().await == 2 }).await;
    eventually("second retry scheduled", || async {
        db.count("events", "WHERE event_type = 'JobRetryScheduled'")
            .await
            == 2
    })
    .await;
    clock.advance(Duration::seconds(20));
    eventually("attempt 3", || async { count().await == 3 }).await;
    eventually("the incident", || async {
        !db.store.incidents(None, 10).await.unwrap().is_empty()
    })
    .await;
    let seen: Vec<i32> = attempts.lock().unwrap().clone();
    assert_eq!(seen, [1, 2, 3], "the handler is told which attempt it runs");

    let incident = &db.store.incidents(Some("three"), 10).await.unwrap()[0];
    assert_eq!(
        (incident.step.as_deref(), incident.attempts),
        (Some("two"), 3)
    );
    assert_eq!(incident.error, "warehouse on fire");
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "running");
    assert_eq!(
        view.waiting_for.as_deref(),
        Some("incident after 3 attempts: warehouse on fire")
    );

    // The operator fixes a variable and retries: the step succeeds and the instance goes on.
    engine
        .retry(id, Some(json!({"fixed": true})))
        .await
        .unwrap();
    let ends = wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    assert_eq!(ends[0].status, Status::Completed);
    assert!(db.store.incidents(None, 10).await.unwrap().is_empty());
    // Retrying without an incident is refused and changes nothing.
    assert!(matches!(
        engine.retry(id, None).await,
        Err(longrun::Error::Rejected { .. })
    ));
}

#[tokio::test]
async fn a_cancelled_instance_withdraws_its_waits_and_timers() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("waiting")
        .receive("wait", "Go")
        .timeout_after("P1D", "done")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(StartRequest::new("waiting", "k"))
        .await
        .unwrap();
    engine.cancel(id, "customer asked").await.unwrap();
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "cancelled");
    assert!(view.ended_at.is_some());
    for table in ["subscriptions", "timers", "jobs"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
    let last = db.store.history(id).await.unwrap().pop().unwrap();
    assert_eq!(last.data["reason"], json!("customer asked"));
    assert!(matches!(
        engine.cancel(id, "again").await,
        Err(longrun::Error::Rejected { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_share_the_work_and_run_each_job_once() {
    let db = TestDb::new().await;
    let runs: Arc<Mutex<HashMap<Uuid, Vec<&'static str>>>> = Arc::default();
    let make = |name: &'static str| {
        let runs = runs.clone();
        Engine::builder(db.store.clone())
            .config(EngineConfig {
                claim_batch: 4,
                handler_concurrency: 4,
                ..fast_config()
            })
            .handler("step", move |job: JobContext| {
                let runs = runs.clone();
                async move {
                    runs.lock()
                        .unwrap()
                        .entry(job.job_id)
                        .or_default()
                        .push(name);
                    tokio::task::yield_now().await;
                    Ok(json!(name))
                }
            })
            .build()
            .unwrap()
    };
    let (a, b) = (make("a"), make("b"));
    let starter = client(&db.store);
    starter.deploy(&three_steps()).await.unwrap();
    let mut ended_a = a.subscribe_ended();
    let mut ended_b = b.subscribe_ended();
    let (ra, rb) = (a.run(), b.run());
    // Started by a third party, so the first jobs are claimed from the table by both engines.
    let ids = starter
        .start_many(
            (0..100)
                .map(|i| StartRequest::new("three", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::broadcast::channel(1024);
    for mut r in [ended_a.resubscribe(), ended_b.resubscribe()] {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(e) = r.recv().await {
                let _ = tx.send(e);
            }
        });
    }
    drop((ended_a.try_recv(), ended_b.try_recv()));
    wait_ended(&mut rx, &ids).await;
    ra.shutdown().await;
    rb.shutdown().await;

    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 300, "every job ran");
    assert!(runs.values().all(|v| v.len() == 1), "no job ran twice");
    let by_a = runs.values().filter(|v| v[0] == "a").count();
    assert!(
        by_a > 0 && by_a < 300,
        "both engines worked: a ran {by_a} of 300"
    );
    assert_eq!(
        db.count("instances", "WHERE status = 'completed'").await,
        100
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_whose_lease_was_taken_over_cannot_record_its_result() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let release = Arc::new(Notify::new());
    let entered = Arc::new(Notify::new());
    let first = Arc::new(AtomicBool::new(true));
    let stalled = {
        let (release, entered) = (release.clone(), entered.clone());
        Engine::builder(db.store.clone())
            .clock(Arc::new(clock.clone()))
            .config(EngineConfig {
                job_lease: Duration::seconds(30),
                maintenance_interval: StdDuration::from_secs(3600),
                ..fast_config()
            })
            // Only its first call stalls. The engine itself keeps running: when the healthy
            // one joins, its share changes and it looks for lapsed jobs too, so either engine
            // may take the job over; a second call here returns at once.
            .handler("step", move |_job: JobContext| {
                let (release, entered, first) = (release.clone(), entered.clone(), first.clone());
                async move {
                    if !first.swap(false, Ordering::SeqCst) {
                        return Ok(json!("taken over"));
                    }
                    entered.notify_one();
                    release.notified().await;
                    Ok(json!("stalled"))
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("one")
        .service("only", "step")
        .end("done")
        .build()
        .unwrap();
    stalled.deploy(&def).await.unwrap();
    let mut ended_on_stalled = stalled.subscribe_ended();
    let running_stalled = stalled.run();
    let id = stalled.start(StartRequest::new("one", "k")).await.unwrap();
    entered.notified().await;

    // The lease lapses; the job is taken over (by the healthy engine or by the stalled one's
    // upkeep) and the instance completes.
    clock.advance(Duration::seconds(31));
    let healthy = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(fast_config())
        .handler("step", |_job: JobContext| async { Ok(json!("healthy")) })
        .build()
        .unwrap();
    let mut ended = healthy.subscribe_ended();
    let running_healthy = healthy.run();
    // Each engine tells of the ends it recorded: whichever took the job over.
    let ids = [id];
    tokio::select! {
        _ = wait_ended(&mut ended, &ids) => {}
        _ = wait_ended(&mut ended_on_stalled, &ids) => {}
    }

    // The stalled handler finishes now; its result must be dropped.
    release.notify_one();
    running_stalled.shutdown().await;
    running_healthy.shutdown().await;
    let history = db.store.history(id).await.unwrap();
    let completions: Vec<&Value> = history
        .iter()
        .filter(|h| h.event_type == "JobCompleted")
        .map(|h| &h.data)
        .collect();
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0]["set"], json!({}));
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_created_by_another_process_wakes_an_idle_engine() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        // Polls so rarely that only the wake-up hint can explain a prompt completion.
        .config(EngineConfig {
            poll_interval: StdDuration::from_secs(600),
            max_poll_interval: StdDuration::from_secs(600),
            maintenance_interval: StdDuration::from_secs(600),
            ..EngineConfig::default()
        })
        .handler("step", |_job: JobContext| async { Ok(Value::Null) })
        .build()
        .unwrap();
    engine.deploy(&three_steps()).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    running.listening().await;
    // A client without workers (like the command line) starts the instance.
    let id = client(&db.store)
        .start(StartRequest::new("three", "k"))
        .await
        .unwrap();
    wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_error_takes_its_path_at_once_without_retries() {
    let db = TestDb::new().await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let engine = {
        let calls = calls.clone();
        Engine::builder(db.store.clone())
            .config(fast_config())
            .handler("charge", move |_job: JobContext| {
                let calls = calls.clone();
                async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Err(HandlerError::business(
                        "CardExpired",
                        "card 4242 expired in 10/26",
                    ))
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("pay")
        .service("charge", "charge")
        .retry(longrun::definition::RetryPolicy::new(5, "PT1S"))
        .on_error("CardExpired", "ask_for_card")
        .end("paid")
        .send("ask_for_card", "CardExpiredNotice")
        .to("customer")
        .end("waiting_for_card")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine.start(StartRequest::new("pay", "o-1")).await.unwrap();
    wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no retries");
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.current_step.as_deref(), Some("waiting_for_card"));
    assert_eq!(
        db.count("outbox", "WHERE name = 'CardExpiredNotice'").await,
        1
    );
    assert_eq!(
        db.count("events", "WHERE event_type = 'JobRetryScheduled'")
            .await,
        0
    );
    assert_eq!(
        db.count("events", "WHERE event_type = 'BusinessErrorCaught'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_compensates_completed_steps_newest_first_once_each() {
    let db = TestDb::new().await;
    let refunds: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let engine = {
        let refunds = refunds.clone();
        Engine::builder(db.store.clone())
            .config(fast_config())
            .handler("charge", |_job: JobContext| async {
                Ok(json!({"charged": 42}))
            })
            .handler("refund", move |job: JobContext| {
                let refunds = refunds.clone();
                async move {
                    refunds.lock().unwrap().push(job.job_id);
                    Ok(Value::Null)
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("saga")
        .service("charge", "charge")
        .compensate(longrun::definition::Compensation::Handler {
            handler: "refund".into(),
        })
        .send("fetch", "FetchGoods")
        .to("inventory")
        .compensate(longrun::definition::Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        })
        .send("note", "Noted") // nothing to undo
        .receive("wait", "Shipped")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("saga", "o-1"))
        .await
        .unwrap();
    eventually("waiting for Shipped", || async {
        db.store.instance(id).await.unwrap().current_step.as_deref() == Some("wait")
    })
    .await;

    engine.cancel(id, "customer withdrew").await.unwrap();
    let ends = wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    assert_eq!(ends[0].status, Status::Cancelled);
    assert_eq!(refunds.lock().unwrap().len(), 1, "the refund ran once");

    let types: Vec<String> = db
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| format!("{} {}", h.event_type, h.data["step"].as_str().unwrap_or("")))
        .collect();
    let tail: Vec<&str> = types
        .iter()
        .rev()
        .take(8)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        [
            "WaitInterrupted wait",
            "CompensationStarted ",
            "MessageSent fetch", // ReleaseGoods: the newest completed step first
            "StepCompensated fetch",
            "JobCreated charge", // then the refund of the charge
            "JobCompleted charge",
            "StepCompensated charge",
            "InstanceCancelled ",
        ]
    );
    assert_eq!(db.count("outbox", "WHERE name = 'ReleaseGoods'").await, 1);
    assert_eq!(db.count("subscriptions", "").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_at_each_step_compensates_exactly_the_steps_before_it_in_reverse() {
    const N: usize = 5;
    let db = TestDb::new().await;
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let engine = {
        let (work_log, undo_log) = (log.clone(), log.clone());
        Engine::builder(db.store.clone())
            .config(fast_config())
            .handler("work", move |job: JobContext| {
                let log = work_log.clone();
                async move {
                    let k = job.variables["fail_at"].as_str().unwrap_or("").to_string();
                    if job.step == k {
                        return Err(HandlerError::new(format!("{k} broke")));
                    }
                    log.lock()
                        .unwrap()
                        .push(format!("{}:{}", job.variables["run"], job.step));
                    Ok(Value::Null)
                }
            })
            .handler("undo", move |job: JobContext| {
                let log = undo_log.clone();
                async move {
                    log.lock()
                        .unwrap()
                        .push(format!("{}:undo {}", job.variables["run"], job.step));
                    Ok(Value::Null)
                }
            })
            .build()
            .unwrap()
    };
    let mut b = ProcessDefinition::builder("steps")
        .service("s0", "work")
        .compensate(longrun::definition::Compensation::Handler {
            handler: "undo".into(),
        });
    for i in 1..N {
        b = b.service(format!("s{i}"), "work").compensate(
            longrun::definition::Compensation::Handler {
                handler: "undo".into(),
            },
        );
    }
    engine
        .deploy(&b.end("done").build().unwrap())
        .await
        .unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    for k in 0..N {
        let id = engine
            .start(
                StartRequest::new("steps", format!("k{k}"))
                    .variables(json!({"fail_at": format!("s{k}"), "run": k})),
            )
            .await
            .unwrap();
        // No retry policy: the failure at step k is an incident; the operator cancels.
        eventually("the incident", || async {
            db.store
                .instance(id)
                .await
                .unwrap()
                .waiting_for
                .is_some_and(|w| w.starts_with("incident"))
        })
        .await;
        engine.cancel(id, "failed").await.unwrap();
        wait_ended(&mut ended, &[id]).await;
        let mine: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(&format!("{k}:")))
            .map(|l| l[2..].to_string())
            .collect();
        let mut expected: Vec<String> = (0..k).map(|i| format!("s{i}")).collect();
        expected.extend((0..k).rev().map(|i| format!("undo s{i}")));
        assert_eq!(mine, expected, "failure at s{k}");
    }
    running.shutdown().await;
}

#[tokio::test]
async fn pausing_withdraws_a_pending_job_and_resuming_restores_it() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&three_steps()).await.unwrap();
    let id = engine.start(StartRequest::new("three", "k")).await.unwrap();
    assert_eq!(db.count("jobs", "").await, 1);
    engine.pause(id).await.unwrap();
    assert_eq!(db.count("jobs", "").await, 0);
    assert!(matches!(
        engine.retry(id, None).await,
        Err(longrun::Error::Rejected { .. })
    ));
    engine.resume(id).await.unwrap();
    assert_eq!(
        db.count("jobs", "WHERE step_id = 'one' AND lease_token IS NULL")
            .await,
        1
    );
    let types: Vec<String> = db
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event_type)
        .collect();
    assert_eq!(
        &types[types.len() - 2..],
        ["InstancePaused", "InstanceResumed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compensate_step_undoes_completed_steps_then_goes_on() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone())
        .config(fast_config())
        .handler("charge", |_job: JobContext| async { Ok(Value::Null) })
        .handler("refund", |_job: JobContext| async { Ok(Value::Null) })
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("giveup")
        .service("charge", "charge")
        .compensate(longrun::definition::Compensation::Handler {
            handler: "refund".into(),
        })
        .send("fetch", "FetchGoods")
        .to("inventory")
        .compensate(longrun::definition::Compensation::Send {
            send: "ReleaseGoods".into(),
            to: Some("inventory".into()),
        })
        .compensate_all("undo")
        .send("tell", "OrderCancelled")
        .end("cancelled")
        .build()
        .unwrap();
    assert_eq!(
        ProcessDefinition::from_json(&def.to_json()).unwrap(),
        def,
        "the compensate step round-trips through JSON"
    );
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("giveup", "o-1"))
        .await
        .unwrap();
    let ends = wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    assert_eq!(ends[0].status, Status::Completed);
    let steps: Vec<String> = db
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| format!("{} {}", h.event_type, h.data["step"].as_str().unwrap_or("")))
        .collect();
    let from = steps
        .iter()
        .position(|s| s.starts_with("CompensationStarted"))
        .unwrap();
    assert_eq!(
        &steps[from..],
        [
            "CompensationStarted ",
            "MessageSent fetch",
            "StepCompensated fetch",
            "JobCreated charge",
            "JobCompleted charge",
            "StepCompensated charge",
            "CompensationFinished ",
            "MessageSent tell",
            "InstanceCompleted cancelled",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_compensation_is_retried_and_then_completes_the_cancel() {
    let db = TestDb::new().await;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let engine = {
        let calls = calls.clone();
        Engine::builder(db.store.clone())
            .config(fast_config())
            .handler("charge", |_job: JobContext| async { Ok(Value::Null) })
            .handler("refund", move |job: JobContext| {
                let calls = calls.clone();
                async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(job.attempt as usize, n + 1, "attempts are counted");
                    if n < 2 {
                        // Even a business error is only retried while compensating.
                        return Err(HandlerError::business("Declined", "bank offline"));
                    }
                    Ok(Value::Null)
                }
            })
            .build()
            .unwrap()
    };
    let def = ProcessDefinition::builder("refundable")
        .retry(longrun::definition::RetryPolicy::new(3, "PT0.01S"))
        .service("charge", "charge")
        .on_error("Declined", "done")
        .compensate(longrun::definition::Compensation::Handler {
            handler: "refund".into(),
        })
        .receive("wait", "Shipped")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("refundable", "o-1"))
        .await
        .unwrap();
    eventually("waiting", || async {
        db.store.instance(id).await.unwrap().current_step.as_deref() == Some("wait")
    })
    .await;
    engine.cancel(id, "withdrawn").await.unwrap();
    let ends = wait_ended(&mut ended, &[id]).await;
    running.shutdown().await;
    assert_eq!(ends[0].status, Status::Cancelled);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        db.count("events", "WHERE event_type = 'JobRetryScheduled'")
            .await,
        2
    );
    assert_eq!(
        db.count("events", "WHERE event_type = 'StepCompensated'")
            .await,
        1
    );
}
