//! Engines that run the same handlers share the buckets under leases (`engines`, migration
//! 0022): each claims jobs only in its share, a stopped engine's buckets go to the others at
//! once, a dead one's when its lease lapses.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use serde_json::json;
use uuid::Uuid;

use crate::common::{client, eventually, TestDb};
use longrun::bucket::bucket_of;
use longrun::{Engine, EngineConfig, JobContext, ProcessDefinition, StartRequest};

fn config(owner: &str) -> EngineConfig {
    EngineConfig {
        owner: owner.into(),
        poll_interval: StdDuration::from_millis(20),
        maintenance_interval: StdDuration::from_millis(20),
        engine_lease: StdDuration::from_millis(300),
        ..EngineConfig::default()
    }
}

/// An engine whose handler notes which engine ran the job of which instance.
fn engine(
    db: &TestDb,
    owner: &'static str,
    ran: Arc<Mutex<HashMap<Uuid, &'static str>>>,
) -> Engine {
    Engine::builder(db.store.clone())
        .config(config(owner))
        .handler("work", move |job: JobContext| {
            let ran = ran.clone();
            async move {
                ran.lock().unwrap().insert(job.instance_id, owner);
                Ok(json!({}))
            }
        })
        .build()
        .unwrap()
}

fn work() -> ProcessDefinition {
    ProcessDefinition::builder("work")
        .service("do", "work")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_claim_only_in_their_share_and_take_over_the_share_of_one_gone() {
    let db = TestDb::new().await;
    let ran = Arc::new(Mutex::new(HashMap::new()));
    let a = engine(&db, "engine-a", ran.clone());
    let b = engine(&db, "engine-b", ran.clone());
    a.deploy(&work()).await.unwrap();
    let run_a = a.run();
    let run_b = b.run();
    eventually("the two engines split the buckets", || {
        let (sa, sb) = (run_a.buckets(), run_b.buckets());
        async move {
            let union: BTreeSet<u8> = sa.iter().chain(&sb).copied().collect();
            !sa.is_empty() && !sb.is_empty() && sa.len() + sb.len() == 256 && union.len() == 256
        }
    })
    .await;
    let share_a: BTreeSet<u8> = run_a.buckets().into_iter().collect();
    assert_eq!(
        share_a,
        longrun::bucket::shares("engine-a", &["engine-b".into()])
            .into_iter()
            .map(|b| b as u8)
            .collect()
    );

    // Jobs made by an engine without workers are claimed, each by the engine whose share holds
    // its instance's bucket.
    let starter = client(&db.store);
    let ids = starter
        .start_many(
            (0..60)
                .map(|i| StartRequest::new("work", format!("w{i}")))
                .collect(),
        )
        .await
        .unwrap();
    eventually("every job ran", || {
        let n = ran.lock().unwrap().len();
        async move { n == 60 }
    })
    .await;
    for id in &ids {
        let by = ran.lock().unwrap()[id];
        let expected = if share_a.contains(&bucket_of(*id)) {
            "engine-a"
        } else {
            "engine-b"
        };
        assert_eq!(by, expected, "instance {id} in bucket {}", bucket_of(*id));
    }
    assert!(ran.lock().unwrap().values().any(|e| *e == "engine-b"));

    // B stops: its row goes, and A takes every bucket at its next renewal.
    run_b.shutdown().await;
    eventually("A takes B's buckets", || {
        let n = run_a.buckets().len();
        async move { n == 256 }
    })
    .await;

    // An engine that dies leaves its row to expire: A shares with it until then, then takes
    // its buckets back without anyone giving them.
    let s = db.schema();
    db.sql()
        .await
        .execute(
            &format!(
                "INSERT INTO \"{s}\".engines VALUES ('engine-dead', 'work', now(), now(), now() + interval '1 second')"
            ),
            &[],
        )
        .await
        .unwrap();
    eventually("A shares with the engine that seems alive", || {
        let n = run_a.buckets().len();
        async move { n < 256 }
    })
    .await;
    eventually(
        "A takes the dead engine's buckets once its lease lapsed",
        || {
            let n = run_a.buckets().len();
            async move { n == 256 }
        },
    )
    .await;
    run_a.shutdown().await;
    assert_eq!(
        db.count("engines", "").await,
        1,
        "only the dead engine's row is left"
    );
}

/// Engines that run other handlers do not share: each covers every bucket for its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_with_other_handlers_each_cover_every_bucket() {
    let db = TestDb::new().await;
    let a = engine(&db, "engine-a", Default::default());
    let other = Engine::builder(db.store.clone())
        .config(config("engine-other"))
        .handler("other", |_job: JobContext| async move { Ok(json!({})) })
        .build()
        .unwrap();
    let run_a = a.run();
    let run_o = other.run();
    eventually("both have every bucket", || {
        let (na, no) = (run_a.buckets().len(), run_o.buckets().len());
        async move { na == 256 && no == 256 }
    })
    .await;
    assert_eq!(db.count("engines", "").await, 2);
    run_a.shutdown().await;
    run_o.shutdown().await;
    assert_eq!(db.count("engines", "").await, 0);
}
