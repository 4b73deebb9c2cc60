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

/// A `send_tx` that makes work for engines wakes them when the caller commits, as `start_tx`
/// does (it used to send no hint: engines found the work at their next poll).
#[tokio::test]
async fn send_tx_wakes_the_engines_when_the_caller_commits() {
    use futures_util::StreamExt;
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine
        .deploy(
            &ProcessDefinition::builder("relay")
                .receive("wait", "Go")
                .key("k")
                .send("onward", "Went")
                .end("done")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    engine
        .start(StartRequest::new("relay", "r").variables(json!({"k": "k1"})))
        .await
        .unwrap();
    // Listen as an engine does.
    let (listener, mut conn) = longrun::store::pg_config(None)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let (tx_hint, mut hints) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = m {
                let _ = tx_hint.send(n.channel().to_string());
            }
        }
    });
    listener
        .batch_execute(&format!("LISTEN \"{}\"", db.schema()))
        .await
        .unwrap();
    let mut c = db.sql().await;
    let tx = c.transaction().await.unwrap();
    let d = engine
        .send_tx(&tx, Message::new("Go", "k1", "go-1"))
        .await
        .unwrap();
    assert!(matches!(d, Delivery::Correlated { .. }), "{d:?}");
    assert!(hints.try_recv().is_err(), "no hint before the commit");
    tx.commit().await.unwrap();
    let channel = tokio::time::timeout(std::time::Duration::from_secs(10), hints.recv())
        .await
        .expect("a wake-up hint after the commit")
        .unwrap();
    assert_eq!(channel, db.schema());
}
