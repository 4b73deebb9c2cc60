//! Embedded subprocesses against a real database: a modeler-made diagram whose subprocess
//! completes, throws an error its boundary catches, or is interrupted by its boundary timer;
//! nothing inside is left behind, and its export round-trips.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{Engine, EngineConfig, JobContext, ManualClock, Message, StartRequest};

const FIXTURE: &str = include_str!("../fixtures/bpmn/subprocess_modeler.bpmn");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modelers_subprocess_completes_is_caught_or_is_interrupted_and_leaves_nothing() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("check_documents", |job: JobContext| async move {
            Ok(json!({"approved": job.variables["complete"] == json!(true)}))
        })
        .handler("ship", |_: JobContext| async move {
            Ok(json!({"shipped": true}))
        })
        .handler("notify_rejection", |_: JobContext| async move {
            Ok(json!({"notified": true}))
        })
        .handler("answer_question", |job: JobContext| async move {
            Ok(json!({"answered": job.variables["question"]}))
        })
        .build()
        .unwrap();
    let deployed = db
        .store
        .deploy_bpmn(FIXTURE, longrun::Clock::now(&clock))
        .await
        .unwrap();
    assert_eq!(deployed.process, "document_review");
    let def = db.store.definition("document_review", 1).await.unwrap();
    let review = def.step("activity_review").unwrap();
    assert_eq!(review.kind.type_name(), "subprocess");
    assert_eq!(
        def.step("activity_check").unwrap().within.as_deref(),
        Some("activity_review")
    );

    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let n = 30;
    let mut ids = Vec::new();
    for i in 0..n {
        let key = format!("o{i}");
        ids.push(
            engine
                .start(
                    StartRequest::new("document_review", &key).variables(json!({"orderId": key})),
                )
                .await
                .unwrap(),
        );
    }
    // Each waits for its documents and listens for customer questions.
    assert_eq!(db.count("subscriptions", "").await, 2 * n as i64);
    // Questions (two rounds to the first ten) are answered beside the running review, which
    // keeps waiting and listening.
    for round in 1..=2 {
        for i in 0..10 {
            engine
                .send(
                    Message::new(
                        "Customer question",
                        format!("o{i}"),
                        format!("q-{i}-{round}"),
                    )
                    .payload(json!({"question": format!("q{round}")})),
                )
                .await
                .unwrap();
        }
        crate::common::eventually("every question is answered", || async {
            db.count(
                "events",
                "WHERE event_type = 'BranchEnded' AND data->>'step' = 'event_answered'",
            )
            .await
                == 10 * round
        })
        .await;
    }
    assert_eq!(
        db.count("events", "WHERE event_type = 'BoundaryMessageReceived'")
            .await,
        20
    );
    assert_eq!(db.count("subscriptions", "").await, 2 * n as i64);
    assert_eq!(db.count("instances", "WHERE status <> 'running'").await, 0);
    assert_eq!(
        db.count("timers", "WHERE kind = 'boundary'").await,
        n as i64
    );
    // A third complete, a third incomplete (rejected inside, caught by the boundary), a
    // third never send their documents (the boundary timer ends the review).
    for i in 0..2 * n / 3 {
        engine
            .send(
                Message::new("Documents received", format!("o{i}"), format!("docs-{i}"))
                    .payload(json!({"complete": i < n / 3})),
            )
            .await
            .unwrap();
    }
    crate::common::eventually("the reviews that got documents end", || async {
        db.count("instances", "WHERE status <> 'running'").await == (2 * n / 3) as i64
    })
    .await;
    clock.advance(Duration::days(2));
    engine.fire_due_timers().await.unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(
        ends.iter().all(|e| e.status == Status::Completed),
        "{ends:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        let expected = if i < n / 3 {
            "event_shipped"
        } else if i < 2 * n / 3 {
            "event_declined"
        } else {
            "event_timedout"
        };
        assert_eq!(view.current_step.as_deref(), Some(expected), "o{i}");
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    }
    assert_eq!(
        db.count("events", "WHERE event_type = 'SubprocessCompleted'")
            .await,
        (n / 3) as i64
    );
    assert_eq!(
        db.count(
            "events",
            "WHERE event_type = 'BusinessErrorCaught' AND data->>'code' = 'REJECTED'"
        )
        .await,
        (n / 3) as i64
    );
    // Nothing inside is left waiting.
    for table in ["jobs", "subscriptions", "timers"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
    // The activity history shows the subprocess as a step of its own.
    longrun::Engine::builder(db.store.clone())
        .build()
        .unwrap()
        .run()
        .shutdown()
        .await;
    crate::common::eventually("the activity projection catches up", || async {
        db.count(
            "activity",
            "WHERE kind = 'subprocess' AND ended_at IS NOT NULL",
        )
        .await
            == n as i64
    })
    .await;

    // Exported, it imports to the same definition and deploys as the same version.
    let exported = longrun::bpmn::export(def.definition()).xml;
    assert!(exported.contains("<bpmn:subProcess id=\"activity_review\""));
    assert!(exported.contains("isExpanded=\"false\""));
    assert_eq!(&longrun::bpmn::import(&exported).unwrap(), def.definition());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_instance_step_runs_each_element_once_on_two_engines_and_collects_in_order() {
    use longrun::definition::MultiInstance;
    let db = TestDb::new().await;
    let def = longrun::ProcessDefinition::builder("picking")
        .service("pick", "pick_line")
        .for_each(
            MultiInstance::over("lines")
                .element("line")
                .collect("picked", Some("sku")),
        )
        .service("pack", "pack")
        .end("done")
        .build()
        .unwrap();
    let picks = Arc::new(std::sync::Mutex::new(Vec::<(String, i64)>::new()));
    let engine = |picks: Arc<std::sync::Mutex<Vec<(String, i64)>>>| {
        Engine::builder(db.store.clone())
            .config(EngineConfig {
                poll_interval: std::time::Duration::from_millis(20),
                ..EngineConfig::default()
            })
            .handler("pick_line", move |job: JobContext| {
                let picks = picks.clone();
                async move {
                    let sku = job.variables["line"]["sku"].as_str().unwrap().to_string();
                    let n = job.variables["loop_counter"].as_i64().unwrap();
                    picks.lock().unwrap().push((sku.clone(), n));
                    Ok(json!({"sku": sku.to_uppercase()}))
                }
            })
            .handler("pack", |job: JobContext| async move {
                Ok(json!({"parcels": job.variables["picked"].as_array().unwrap().len()}))
            })
            .build()
            .unwrap()
    };
    let (a, b) = (engine(picks.clone()), engine(picks.clone()));
    a.deploy(&def).await.unwrap();
    let mut ended = a.subscribe_ended();
    let mut ended_b = b.subscribe_ended();
    let n = 20;
    let ids = a
        .start_many(
            (0..n)
                .map(|i| {
                    StartRequest::new("picking", format!("p{i}")).variables(json!({
                        "lines": (0..5).map(|l| json!({"sku": format!("s{i}-{l}")})).collect::<Vec<_>>()
                    }))
                })
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(db.count("jobs", "").await, (n * 5) as i64);
    let (ra, rb) = (a.run(), b.run());
    let mut seen = std::collections::HashSet::new();
    while seen.len() < ids.len() {
        tokio::select! {
            Ok(e) = ended.recv() => { seen.insert(e.instance_id); }
            Ok(e) = ended_b.recv() => { seen.insert(e.instance_id); }
            _ = tokio::time::sleep(std::time::Duration::from_secs(60)) => panic!("instances did not end"),
        }
    }
    ra.shutdown().await;
    rb.shutdown().await;
    // Each element ran once, whichever engine took it.
    let picks = picks.lock().unwrap().clone();
    assert_eq!(picks.len(), n * 5);
    let distinct: std::collections::HashSet<_> = picks.iter().map(|p| p.0.clone()).collect();
    assert_eq!(distinct.len(), n * 5);
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        assert_eq!(view.status, "completed");
        let expected: Vec<String> = (0..5).map(|l| format!("S{i}-{l}")).collect();
        assert_eq!(view.variables["picked"], json!(expected));
        assert_eq!(view.variables["parcels"], json!(5));
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    }
    assert_eq!(
        db.count("events", "WHERE event_type = 'ElementCompleted'")
            .await,
        (n * 5) as i64
    );
    assert_eq!(db.count("jobs", "").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modelers_multi_instance_tasks_run_per_element_and_round_trip() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let xml = include_str!("../fixtures/bpmn/multi_instance_modeler.bpmn");
    db.store
        .deploy_bpmn(xml, longrun::Clock::now(&clock))
        .await
        .unwrap();
    let def = db.store.definition("pick_lines", 1).await.unwrap();
    let m = def.step("activity_pick").unwrap().multi.clone().unwrap();
    assert_eq!(
        (m.collection.as_str(), m.element.as_deref(), m.sequential),
        ("order.lines", Some("line"), false)
    );
    assert_eq!(m.output_element.as_deref(), Some("sku"));
    let approve = def.step("activity_approve").unwrap().multi.clone().unwrap();
    assert!(approve.sequential && approve.completion.is_some());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("pick_line", |job: JobContext| async move {
            Ok(json!({"sku": job.variables["line"]["sku"]}))
        })
        .build()
        .unwrap();
    let running = engine.run();
    let id = engine
        .start(StartRequest::new("pick_lines", "o1").variables(json!({
            "order": {"lines": [{"sku": "x"}, {"sku": "y"}]},
            "approvers": ["ann", "bob", "cid"],
            "rejected": false
        })))
        .await
        .unwrap();
    // Ann approves; Bob rejects, and the completion condition ends it before Cid.
    for (who, rejected) in [("ann", false), ("bob", true)] {
        let task = loop {
            let page = engine
                .tasks(&longrun::store::TaskQuery {
                    assignee: Some(who.to_string()),
                    ..Default::default()
                })
                .await
                .unwrap();
            if let Some(t) = page.tasks.into_iter().next() {
                break t;
            }
            tokio::task::yield_now().await;
        };
        engine
            .complete(task.task_id, who, json!({"rejected": rejected}))
            .await
            .unwrap();
    }
    let mut ended = engine.subscribe_ended();
    if db.store.instance(id).await.unwrap().status == "running" {
        wait_ended(&mut ended, &[id]).await;
    }
    running.shutdown().await;
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.variables["picked"], json!(["x", "y"]));
    assert_eq!(db.count("tasks", "").await, 0);
    assert_eq!(
        db.count("events", "WHERE event_type = 'TaskCreated'").await,
        2,
        "Cid was never asked"
    );
    // Exported and imported again: the same definition.
    let exported = longrun::bpmn::export(def.definition()).xml;
    assert!(exported.contains("<bpmn:multiInstanceLoopCharacteristics isSequential=\"true\">"));
    assert_eq!(&longrun::bpmn::import(&exported).unwrap(), def.definition());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_modelers_event_subprocesses_cancel_or_remind_and_leave_nothing() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap());
    let xml = include_str!("../fixtures/bpmn/event_subprocess_modeler.bpmn");
    db.store
        .deploy_bpmn(xml, longrun::Clock::now(&clock))
        .await
        .unwrap();
    let def = db.store.definition("await_payment", 1).await.unwrap();
    assert_eq!(
        def.step("activity_oncancel").unwrap().kind.type_name(),
        "event_subprocess"
    );
    let nudges = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = nudges.clone();
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("release", |_: JobContext| async move {
            Ok(json!({"released": true}))
        })
        .handler("nudge", move |_: JobContext| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json!({}))
            }
        })
        .build()
        .unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let n = 10;
    let mut ids = Vec::new();
    for i in 0..n {
        let key = format!("o{i}");
        ids.push(
            engine
                .start(StartRequest::new("await_payment", &key).variables(json!({"orderId": key})))
                .await
                .unwrap(),
        );
    }
    // Each listens for its payment and its cancel, with a daily reminder armed.
    assert_eq!(db.count("subscriptions", "").await, 2 * n as i64);
    assert_eq!(db.count("timers", "").await, n as i64);
    // A day passes: every instance is reminded once and keeps waiting, its reminder armed again.
    clock.advance(Duration::days(1));
    engine.fire_due_timers().await.unwrap();
    crate::common::eventually("every instance was reminded", || async {
        nudges.load(std::sync::atomic::Ordering::SeqCst) == n
            && db.count("timers", "").await == n as i64
    })
    .await;
    // Half pay, half cancel.
    for i in 0..n {
        let name = if i % 2 == 0 {
            "Payment received"
        } else {
            "Order cancelled"
        };
        engine
            .send(Message::new(name, format!("o{i}"), format!("m{i}")))
            .await
            .unwrap();
    }
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(
        ends.iter().all(|e| e.status == Status::Completed),
        "{ends:?}"
    );
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        // An instance an event subprocess ended completes at that event subprocess.
        let expected = if i % 2 == 0 {
            "event_paid"
        } else {
            "activity_oncancel"
        };
        assert_eq!(view.current_step.as_deref(), Some(expected), "o{i}");
        if i % 2 == 1 {
            assert_eq!(view.variables["released"], json!(true));
        }
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    }
    for table in ["jobs", "subscriptions", "timers"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
    let exported = longrun::bpmn::export(def.definition()).xml;
    assert!(exported.contains("triggeredByEvent=\"true\""));
    assert!(exported.contains("isInterrupting=\"false\""));
    assert_eq!(&longrun::bpmn::import(&exported).unwrap(), def.definition());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_instance_subprocess_runs_its_steps_per_element_on_a_real_engine() {
    use longrun::definition::MultiInstance;
    let db = TestDb::new().await;
    let def = longrun::ProcessDefinition::builder("lines")
        .subprocess("per_line", |b| {
            b.service("pick", "pick")
                .exclusive("fragile")
                .when("line.fragile == true", "wrap")
                .otherwise("line_done")
                .service("wrap", "wrap")
                .next("line_done")
                .end("line_done")
        })
        .for_each(
            MultiInstance::over("lines")
                .element("line")
                .collect("handled", Some("sku")),
        )
        .end("done")
        .build()
        .unwrap();
    let wraps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = wraps.clone();
    let engine = Engine::builder(db.store.clone())
        .config(EngineConfig {
            poll_interval: std::time::Duration::from_millis(20),
            ..EngineConfig::default()
        })
        .handler("pick", |job: JobContext| async move {
            Ok(json!({"sku": job.variables["line"]["sku"]}))
        })
        .handler("wrap", move |job: JobContext| {
            let counted = counted.clone();
            async move {
                assert_eq!(job.variables["line"]["fragile"], json!(true));
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(json!({"sku": job.variables["line"]["sku"]}))
            }
        })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let n = 10;
    let mut ids = Vec::new();
    for i in 0..n {
        let lines: Vec<_> = (0..3)
            .map(|l| json!({"sku": format!("o{i}-{l}"), "fragile": l == 1}))
            .collect();
        ids.push(
            engine
                .start(
                    StartRequest::new("lines", format!("o{i}")).variables(json!({"lines": lines})),
                )
                .await
                .unwrap(),
        );
    }
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(
        ends.iter().all(|e| e.status == Status::Completed),
        "{ends:?}"
    );
    assert_eq!(wraps.load(std::sync::atomic::Ordering::SeqCst), n);
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        let expected: Vec<String> = (0..3).map(|l| format!("o{i}-{l}")).collect();
        assert_eq!(view.variables["handled"], json!(expected));
        let replay = db.store.replay(*id).await.unwrap();
        assert!(replay.differences.is_empty(), "{:?}", replay.differences);
    }
    assert_eq!(db.count("jobs", "").await, 0);
}
