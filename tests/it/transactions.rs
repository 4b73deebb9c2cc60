use serde_json::json;

use crate::common::{client, TestDb};
use longrun::{Delivery, Message, ProcessDefinition, StartRequest};

fn waiter() -> ProcessDefinition {
    ProcessDefinition::builder("waiter")
        .send("announce", "Waiting")
        .receive("wait", "Go")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_start_in_a_rolled_back_transaction_leaves_nothing() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&waiter()).await.unwrap();
    let mut c = db.sql().await;
    let tx = c.transaction().await.unwrap();
    let id = engine
        .start_tx(&tx, StartRequest::new("waiter", "k"))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(db.store.instance(id).await.is_err());
    for table in ["instances", "events", "outbox", "subscriptions"] {
        assert_eq!(db.count(table, "").await, 0, "{table}");
    }
}

#[tokio::test]
async fn business_data_and_process_state_commit_together() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&waiter()).await.unwrap();
    let mut c = db.sql().await;
    c.batch_execute(&format!(
        "CREATE TABLE \"{}\".orders (id text primary key, state text)",
        db.schema()
    ))
    .await
    .unwrap();

    let tx = c.transaction().await.unwrap();
    tx.execute(
        &format!(
            "INSERT INTO \"{}\".orders VALUES ('k', 'placed')",
            db.schema()
        ),
        &[],
    )
    .await
    .unwrap();
    let id = engine
        .start_tx(&tx, StartRequest::new("waiter", "k"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        db.store.instance(id).await.unwrap().current_step.as_deref(),
        Some("wait")
    );

    // The inbox mark, the transition and the business update commit together...
    let tx = c.transaction().await.unwrap();
    tx.execute(
        &format!("UPDATE \"{}\".orders SET state = 'go'", db.schema()),
        &[],
    )
    .await
    .unwrap();
    let d = engine
        .send_tx(
            &tx,
            Message::new("Go", "k", "go-1").payload(json!({"by": "test"})),
        )
        .await
        .unwrap();
    assert_eq!(d, Delivery::Correlated { instance_id: id });
    // ... or not at all.
    tx.rollback().await.unwrap();
    assert_eq!(db.store.instance(id).await.unwrap().status, "running");
    assert_eq!(db.count("inbox", "").await, 0);
    assert_eq!(db.count("orders", "WHERE state = 'go'").await, 0);

    let tx = c.transaction().await.unwrap();
    tx.execute(
        &format!("UPDATE \"{}\".orders SET state = 'go'", db.schema()),
        &[],
    )
    .await
    .unwrap();
    engine
        .send_tx(&tx, Message::new("Go", "k", "go-1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");
    assert_eq!(db.count("orders", "WHERE state = 'go'").await, 1);
}
