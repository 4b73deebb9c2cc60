//! What must happen one transaction at a time is serialized by row locks on `locks`, not by
//! advisory locks (which hold on one node of a distributed database only): a message and the
//! wait for it, and the deploys of one process.

use std::collections::BTreeSet;

use crate::common::{client, TestDb};
use longrun::{Message, ProcessDefinition, StartRequest};

fn race() -> ProcessDefinition {
    ProcessDefinition::builder("race")
        .receive("wait", "RaceGo")
        .end("done")
        .build()
        .unwrap()
}

/// Messages sent while their instances start waiting for them, on two engines at once: each
/// wait gets its message, whichever transaction commits first (the one that finds no
/// subscription buffers the message, the one that finds no message subscribes, and the lock
/// row makes the second see the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_while_its_wait_starts_is_taken_once() {
    let db = TestDb::new().await;
    let starter = client(&db.store);
    let sender = client(&db.store);
    starter.deploy(&race()).await.unwrap();
    let mut ids = Vec::new();
    for round in 0..6 {
        let keys: Vec<String> = (0..20).map(|i| format!("race-{round}-{i}")).collect();
        let starts: Vec<_> = keys
            .iter()
            .map(|k| {
                let (e, k) = (starter.clone(), k.clone());
                tokio::spawn(async move { e.start(StartRequest::new("race", k)).await.unwrap() })
            })
            .collect();
        let sends: Vec<_> = keys
            .iter()
            .map(|k| {
                let (e, k) = (sender.clone(), k.clone());
                tokio::spawn(async move {
                    e.send(Message::new("RaceGo", k.clone(), format!("go-{k}")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        for t in starts {
            ids.push(t.await.unwrap());
        }
        for t in sends {
            t.await.unwrap();
        }
    }
    let mut stuck = Vec::new();
    for id in &ids {
        let view = db.store.instance(*id).await.unwrap();
        if view.status != "completed" {
            stuck.push((view.business_key, view.status));
        }
    }
    assert!(
        stuck.is_empty(),
        "waits that missed their message: {stuck:?}"
    );
    assert_eq!(db.count("inbox", "WHERE status = 'buffered'").await, 0);
    assert_eq!(
        db.count("inbox", "WHERE status = 'correlated'").await,
        ids.len() as i64
    );
    // One lock row per correlation, in its key's bucket.
    assert_eq!(
        db.count("locks", "WHERE lock_key LIKE 'correlate%'").await,
        ids.len() as i64
    );
    let s = db.schema();
    assert_eq!(
        db.count(
            "locks",
            &format!(
                "WHERE lock_key LIKE 'correlate%'
                   AND bucket <> \"{s}\".bucket_of_key(split_part(lock_key, chr(31), 3))"
            )
        )
        .await,
        0
    );
}

/// Ten different documents of one process deployed at once get versions 1 to 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_of_one_process_number_versions_without_gaps() {
    let db = TestDb::new().await;
    let engines: Vec<_> = (0..2).map(|_| client(&db.store)).collect();
    let deploys: Vec<_> = (0..10)
        .map(|n| {
            let e = engines[n % 2].clone();
            let def = ProcessDefinition::builder("versions")
                .receive(format!("wait_{n}"), "Go")
                .end("done")
                .build()
                .unwrap();
            tokio::spawn(async move { e.deploy(&def).await.unwrap().version })
        })
        .collect();
    let mut versions = BTreeSet::new();
    for d in deploys {
        versions.insert(d.await.unwrap());
    }
    assert_eq!(versions, (1..=10).collect::<BTreeSet<i32>>());
}

/// No statement the engines run takes an advisory lock; only migrations do (one schema's
/// migrations run one at a time, before any engine uses it).
#[test]
fn only_migrations_take_advisory_locks() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/queries");
    let mut takers = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap();
        if sql.to_lowercase().contains("pg_advisory") {
            takers.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert_eq!(takers, ["migrations_lock.sql"]);
}
