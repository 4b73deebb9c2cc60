//! Task and operator actions from many callers share transactions while the engine runs; each
//! caller still gets its own outcome: one that is refused inside the group changes nothing of
//! its own and fails no other.
//!
//! The tests run on one thread, so every call is queued before the grouping worker first
//! runs: they make one group, which the events' transaction ids show.

use futures_util::future::join_all;
use serde_json::json;
use uuid::Uuid;

use crate::common::{client, waits_for_go, TestDb};
use longrun::definition::UserTask;
use longrun::store::TaskQuery;
use longrun::{Engine, Error, ProcessDefinition, StartRequest};

const N: usize = 30;

/// Transactions that wrote the events of type `event_type`.
async fn transactions(db: &TestDb, event_type: &str) -> i64 {
    db.scalar(&format!(
        "SELECT count(DISTINCT xid)::bigint FROM {{schema}}.events WHERE event_type = '{event_type}'"
    ))
    .await
}

#[tokio::test]
async fn concurrent_task_completions_share_a_transaction_and_each_gets_its_outcome() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone()).build().unwrap();
    let def = ProcessDefinition::builder("acts_review")
        .user_task("review", UserTask::new().candidate_groups(["acts"]))
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let starts = (0..N)
        .map(|i| StartRequest::new("acts_review", format!("r{i}")))
        .collect();
    client(&db.store).start_many(starts).await.unwrap();
    let tasks = engine
        .tasks(&TaskQuery {
            candidate_groups: vec!["acts".into()],
            limit: N as u32,
            ..TaskQuery::default()
        })
        .await
        .unwrap()
        .tasks;
    assert_eq!(tasks.len(), N);

    let running = engine.run();
    let mut calls: Vec<Uuid> = tasks.iter().map(|t| t.task_id).collect();
    // The first task completed twice, and a task that does not exist.
    calls.push(tasks[0].task_id);
    let unknown = Uuid::new_v4();
    calls.push(unknown);
    let outcomes = join_all(
        calls
            .iter()
            .map(|t| engine.complete(*t, "alice", json!({ "ok": true }))),
    )
    .await;
    running.shutdown().await;

    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (i, Ok(())) if i < N => {}
            (i, Err(Error::TaskNotOpen(t))) if i >= N => assert_eq!(*t, calls[i]),
            (i, other) => panic!("call {i} on task {}: {other:?}", calls[i]),
        }
    }
    assert_eq!(
        db.count("instances", "WHERE status = 'completed'").await,
        N as i64
    );
    assert_eq!(
        db.count("events", "WHERE event_type = 'TaskCompleted'")
            .await,
        N as i64
    );
    assert_eq!(transactions(&db, "TaskCompleted").await, 1);
}

#[tokio::test]
async fn concurrent_operator_actions_share_a_transaction_and_each_gets_its_outcome() {
    let db = TestDb::new().await;
    let engine = Engine::builder(db.store.clone()).build().unwrap();
    engine.deploy(&waits_for_go()).await.unwrap();
    let starts = (0..N)
        .map(|i| StartRequest::new("p", format!("k{i}")).variables(json!({ "k": format!("k{i}") })))
        .collect();
    let ids = client(&db.store).start_many(starts).await.unwrap();

    let running = engine.run();
    let mut calls = ids.clone();
    // The first instance cancelled twice, and an instance that does not exist.
    calls.push(ids[0]);
    calls.push(Uuid::new_v4());
    let outcomes = join_all(calls.iter().map(|id| engine.cancel(*id, "withdrawn"))).await;
    running.shutdown().await;

    for (i, outcome) in outcomes.iter().enumerate() {
        match (i, outcome) {
            (i, Ok(())) if i < N => {}
            (i, Err(Error::Rejected { instance, .. })) if i == N => assert_eq!(*instance, ids[0]),
            (i, Err(Error::InstanceNotFound(id))) if i == N + 1 => assert_eq!(*id, calls[i]),
            (i, other) => panic!("call {i} on instance {}: {other:?}", calls[i]),
        }
    }
    assert_eq!(
        db.count("instances", "WHERE status = 'cancelled'").await,
        N as i64
    );
    assert_eq!(transactions(&db, "InstanceCancelled").await, 1);
}
