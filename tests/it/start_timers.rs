//! Timer starts: a process that starts instances by itself, exactly once per firing across
//! engines, on the latest version's schedule.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};

use crate::common::{eventually, TestDb};
use longrun::definition::StartTimer;
use longrun::{Engine, ManualClock, ProcessDefinition};

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

fn engine_on(db: &TestDb, clock: &ManualClock) -> Engine {
    Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

fn report(timer: &str) -> ProcessDefinition {
    ProcessDefinition::builder("report")
        .start_on_timer(StartTimer::Cycle(timer.into()))
        .receive("wait", "Never")
        .end("done")
        .build()
        .unwrap()
}

async fn keys(db: &TestDb) -> Vec<String> {
    db.sql()
        .await
        .query(
            &format!(
                "SELECT business_key FROM \"{}\".instances ORDER BY business_key",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn a_cycle_starts_one_instance_per_firing_and_skips_what_it_missed() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&report("R3/PT1H")).await.unwrap();
    assert_eq!(engine.fire_start_timers().await.unwrap(), 0, "not due yet");
    clock.advance(Duration::hours(1));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 1);
    assert_eq!(
        engine.fire_start_timers().await.unwrap(),
        0,
        "that firing is done"
    );
    assert_eq!(keys(&db).await, ["2026-03-01T10:00:00.000Z"]);
    // Five hours later: one instance for the missed firings, then on from the next slot.
    clock.advance(Duration::hours(5));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 1);
    let timers = db.store.start_timers().await.unwrap();
    assert_eq!(timers[0].due_at.to_rfc3339(), "2026-03-01T16:00:00+00:00");
    assert_eq!(timers[0].fired, 2);
    clock.advance(Duration::hours(1));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 1);
    // Three in all: the schedule is over.
    assert!(db.store.start_timers().await.unwrap().is_empty());
    clock.advance(Duration::hours(10));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 0);
    assert_eq!(
        keys(&db).await,
        [
            "2026-03-01T10:00:00.000Z",
            "2026-03-01T11:00:00.000Z",
            "2026-03-01T16:00:00.000Z"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_firing_at_once_start_each_firing_once() {
    let db = TestDb::new().await;
    let clock = clock();
    let engines: Vec<Engine> = (0..4).map(|_| engine_on(&db, &clock)).collect();
    engines[0].deploy(&report("R/PT1M")).await.unwrap();
    for _ in 0..5 {
        clock.advance(Duration::minutes(1));
        let fired = futures_all(&engines).await;
        assert_eq!(fired, 1, "one firing, one instance, whoever takes it");
    }
    assert_eq!(db.count("instances", "").await, 5);
}

async fn futures_all(engines: &[Engine]) -> usize {
    let tasks: Vec<_> = engines
        .iter()
        .map(|e| {
            let e = e.clone();
            tokio::spawn(async move { e.fire_start_timers().await.unwrap() })
        })
        .collect();
    let mut n = 0;
    for t in tasks {
        n += t.await.unwrap();
    }
    n
}

#[tokio::test]
async fn a_new_version_replaces_the_schedule_or_ends_it() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&report("R/PT1H")).await.unwrap();
    engine.deploy(&report("R/PT10M")).await.unwrap();
    let timers = db.store.start_timers().await.unwrap();
    assert_eq!((timers.len(), timers[0].version), (1, 2));
    assert_eq!(timers[0].due_at.to_rfc3339(), "2026-03-01T09:10:00+00:00");
    clock.advance(Duration::minutes(10));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 1);
    assert_eq!(
        db.count("instances", "WHERE version = 2").await,
        1,
        "the instance runs the version whose timer fired"
    );
    let plain = ProcessDefinition::builder("report")
        .receive("wait", "Never")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&plain).await.unwrap();
    assert!(db.store.start_timers().await.unwrap().is_empty());
    clock.advance(Duration::hours(3));
    assert_eq!(engine.fire_start_timers().await.unwrap(), 0);
}

#[tokio::test]
async fn a_running_engine_fires_timer_starts_by_itself() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let once = ProcessDefinition::builder("once")
        .start_on_timer(StartTimer::Duration("PT30M".into()))
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&once).await.unwrap();
    let running = engine.run();
    clock.advance(Duration::minutes(30));
    eventually("the timer start fires", || async {
        db.count("instances", "WHERE status = 'completed'").await == 1
    })
    .await;
    running.shutdown().await;
    assert!(db.store.start_timers().await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_timer_starts_are_refused() {
    let db = TestDb::new().await;
    let engine = engine_on(&db, &clock());
    for (timer, why) in [
        (StartTimer::Cycle("PT1H".into()), "R"),
        (StartTimer::Cycle("R/PT0.1S".into()), "second"),
        (StartTimer::Date("tomorrow".into()), "RFC 3339"),
    ] {
        let err = ProcessDefinition::builder("bad")
            .start_on_timer(timer)
            .end("done")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{err}");
    }
    let both = ProcessDefinition::builder("both")
        .start_on_message("Go")
        .start_on_timer(StartTimer::Cycle("R/PT1H".into()))
        .end("done")
        .build()
        .unwrap_err()
        .to_string();
    assert!(both.contains("not both"), "{both}");
    assert_eq!(db.count("definitions", "").await, 0);
    let _ = engine;
}
