use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use crate::common::{client, TestDb};
use longrun::bucket::bucket_of_key;
use longrun::{Delivery, Engine, ManualClock, Message, ProcessDefinition, StartRequest};

fn order() -> ProcessDefinition {
    ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json")).unwrap()
}

async fn setup() -> (TestDb, Engine) {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&order()).await.unwrap();
    (db, engine)
}

fn started(d: Delivery) -> uuid::Uuid {
    match d {
        Delivery::Started { instance_id, .. } => instance_id,
        other => panic!("expected Started, got {other:?}"),
    }
}

#[tokio::test]
async fn the_order_runs_on_messages_alone() {
    let (db, engine) = setup().await;
    let id = started(
        engine
            .send(Message::new("OrderPlaced", "o1", "c1").payload(json!({"orderId": "o1"})))
            .await
            .unwrap(),
    );
    let view = db.store.instance(id).await.unwrap();
    // Payment and goods are awaited at once, in two branches.
    assert_eq!(
        view.current_step.as_deref(),
        Some("payment_outcome, goods_fetched")
    );
    assert_eq!(
        view.waiting_for.as_deref(),
        Some("payment_outcome: first event of gateway payment_outcome; goods_fetched: message GoodsFetched key o1")
    );
    // Two commands went out, to two recipients.
    assert_eq!(
        db.count("outbox", "WHERE topic IN ('payment', 'inventory')")
            .await,
        2
    );

    for (name, mid) in [
        ("GoodsFetched", "g1"),
        ("PaymentReceived", "p1"),
        ("GoodsShipped", "s1"),
    ] {
        assert_eq!(
            engine
                .send(Message::new(name, "o1", mid).payload(json!({"ok": name})))
                .await
                .unwrap(),
            Delivery::Correlated { instance_id: id }
        );
    }
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.variables["shipment"], json!({"ok": "GoodsShipped"}));
    let types: Vec<String> = db
        .store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event_type)
        .collect();
    assert_eq!(types.first().map(String::as_str), Some("InstanceStarted"));
    assert_eq!(types.last().map(String::as_str), Some("InstanceCompleted"));
    assert_eq!(db.count("subscriptions", "").await, 0);
}

#[tokio::test]
async fn a_duplicate_message_id_changes_nothing() {
    let (db, engine) = setup().await;
    let place = Message::new("OrderPlaced", "o1", "c1");
    let id = started(engine.send(place.clone()).await.unwrap());
    assert_eq!(
        engine.send(place).await.unwrap(),
        Delivery::Duplicate {
            status: "started".into(),
            instance_id: Some(id)
        }
    );
    let paid = Message::new("PaymentReceived", "o1", "p1");
    engine.send(paid.clone()).await.unwrap();
    let events = db.store.history(id).await.unwrap().len();
    let d = engine.send(paid).await.unwrap();
    assert!(matches!(d, Delivery::Duplicate { ref status, .. } if status == "correlated"));
    assert_eq!(db.store.history(id).await.unwrap().len(), events);
    assert_eq!(db.count("instances", "").await, 1);
}

#[tokio::test]
async fn a_message_before_the_wait_is_buffered_then_taken() {
    let (db, engine) = setup().await;
    let id = started(
        engine
            .send(Message::new("OrderPlaced", "o1", "c1"))
            .await
            .unwrap(),
    );
    // GoodsShipped arrives before the goods were even fetched (a fast carrier).
    let early = engine
        .send(Message::new("GoodsShipped", "o1", "s1").payload(json!({"tracking": 3})))
        .await
        .unwrap();
    assert!(matches!(early, Delivery::Buffered { .. }));
    // Even a message for an order that does not exist yet is kept.
    let very_early = engine
        .send(Message::new("PaymentReceived", "o2", "p2"))
        .await
        .unwrap();
    assert!(matches!(very_early, Delivery::Buffered { .. }));

    for m in [
        Message::new("PaymentReceived", "o1", "p1"),
        Message::new("GoodsFetched", "o1", "g1"),
    ] {
        engine.send(m).await.unwrap();
    }
    // The join went on to ShipGoods and the wait for GoodsShipped took the early one.
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.status, "completed");
    assert_eq!(view.variables["shipment"], json!({"tracking": 3}));

    let id2 = started(
        engine
            .send(Message::new("OrderPlaced", "o2", "c2"))
            .await
            .unwrap(),
    );
    let view = db.store.instance(id2).await.unwrap();
    assert_eq!(
        view.current_step.as_deref(),
        Some("goods_fetched"),
        "took the early payment"
    );
    assert_eq!(db.count("inbox", "WHERE status = 'buffered'").await, 0);
}

#[tokio::test]
async fn an_expired_buffered_message_is_not_taken_and_becomes_a_dead_letter() {
    let db = TestDb::new().await;
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let engine = Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    engine.deploy(&order()).await.unwrap();
    let d = engine
        .send(Message::new("PaymentReceived", "o1", "p1").ttl(Duration::minutes(10)))
        .await
        .unwrap();
    assert_eq!(
        d,
        Delivery::Buffered {
            expires_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 10, 0).unwrap()
        }
    );
    clock.advance(Duration::minutes(10));
    let id = started(
        engine
            .send(Message::new("OrderPlaced", "o1", "c1"))
            .await
            .unwrap(),
    );
    assert_eq!(
        db.store.instance(id).await.unwrap().current_step.as_deref(),
        Some("payment_outcome, goods_fetched"),
        "an expired message is not correlated"
    );
    assert_eq!(
        db.store
            .expire_buffered(longrun::Clock::now(&clock), 100)
            .await
            .unwrap(),
        1
    );
    let dead = db.store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .reason
            .starts_with("expired: no instance waited for PaymentReceived with key o1"),
        "{}",
        dead[0].reason
    );
}

#[tokio::test]
async fn an_unknown_message_is_dead_lettered_with_a_reason() {
    let (db, engine) = setup().await;
    let d = engine
        .send(Message::new("Bogus", "o1", "b1"))
        .await
        .unwrap();
    assert_eq!(
        d,
        Delivery::DeadLettered {
            reason: "unknown message: no deployed process starts on or waits for \"Bogus\"".into()
        }
    );
    assert_eq!(db.count("inbox", "WHERE status = 'dead'").await, 1);
    assert_eq!(db.count("instances", "").await, 0);
}

#[tokio::test]
async fn a_bad_message_is_refused_and_writes_nothing() {
    let (db, engine) = setup().await;
    for m in [
        Message::new("", "k", "i"),
        Message::new("A ", "k", "i"),
        Message::new("A", "k", ""),
    ] {
        assert!(matches!(
            engine.send(m).await,
            Err(longrun::Error::BadInput(_))
        ));
    }
    assert_eq!(db.count("inbox", "").await, 0);
}

#[tokio::test]
async fn started_instances_correlate_by_the_key_variable() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("ship")
        .receive("wait", "Shipped")
        .key("shipment.id")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(StartRequest::new("ship", "order-9").variables(json!({"shipment": {"id": 77}})))
        .await
        .unwrap();
    assert_eq!(
        engine
            .send(Message::new("Shipped", "77", "s"))
            .await
            .unwrap(),
        Delivery::Correlated { instance_id: id }
    );
    assert_eq!(db.count("subscriptions", "").await, 0);
    // A wait under a key of another bucket than the business key's, ended without its
    // message (cancelled): its subscription goes from the bucket of its key.
    let (key, business_key) = ("78", "order-10");
    assert_ne!(bucket_of_key(key), bucket_of_key(business_key));
    let other = engine
        .start(StartRequest::new("ship", business_key).variables(json!({"shipment": {"id": 78}})))
        .await
        .unwrap();
    assert_eq!(
        db.count(
            "subscriptions",
            &format!("WHERE bucket = {}", bucket_of_key(key))
        )
        .await,
        1
    );
    engine.cancel(other, "no longer shipped").await.unwrap();
    assert_eq!(db.count("subscriptions", "").await, 0);
}

#[tokio::test]
async fn a_batch_of_messages_gets_one_outcome_each_as_if_sent_alone() {
    let (db, engine) = setup().await;
    let o1 = started(
        engine
            .send(Message::new("OrderPlaced", "o1", "c1"))
            .await
            .unwrap(),
    );
    let batch = vec![
        Message::new("OrderPlaced", "o2", "c2"),     // starts o2
        Message::new("PaymentReceived", "o1", "p1"), // correlates o1
        Message::new("GoodsFetched", "o1", "g1"),    // o1 waits for it in its other branch
        Message::new("PaymentReceived", "o1", "p1"), // a copy within the batch
        Message::new("OrderPlaced", "o1", "c1"),     // a copy of an earlier message
        Message::new("GoodsShipped", "o9", "s9"),    // nobody waits: buffered
        Message::new("Nonsense", "o1", "x1"),        // nobody knows it: dead
    ];
    let out: Vec<Delivery> = engine
        .send_many(batch)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(matches!(out[0], Delivery::Started { .. }));
    assert_eq!(out[1], Delivery::Correlated { instance_id: o1 });
    assert_eq!(out[2], Delivery::Correlated { instance_id: o1 });
    assert_eq!(
        db.count("inbox", "WHERE message_id = 'g1' AND status = 'correlated'")
            .await,
        1
    );
    assert_eq!(
        out[3],
        Delivery::Duplicate {
            status: "correlated".into(),
            instance_id: Some(o1)
        }
    );
    assert_eq!(
        out[4],
        Delivery::Duplicate {
            status: "started".into(),
            instance_id: Some(o1)
        }
    );
    assert!(matches!(out[5], Delivery::Buffered { .. }));
    assert!(matches!(out[6], Delivery::DeadLettered { .. }));
    assert_eq!(
        db.store.instance(o1).await.unwrap().current_step.as_deref(),
        Some("goods_shipped")
    );
    assert_eq!(db.count("inbox", "").await, 6, "one row per distinct id");
}

/// Modelers name messages in words: such a name starts an instance and correlates to it.
#[tokio::test]
async fn message_names_with_spaces_start_and_correlate() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("words")
        .start_on_message("Order placed")
        .receive("wait", "Payment received")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = started(
        engine
            .send(Message::new("Order placed", "o-1", "m-1"))
            .await
            .unwrap(),
    );
    assert_eq!(
        engine
            .send(Message::new("Payment received", "o-1", "m-2"))
            .await
            .unwrap(),
        Delivery::Correlated { instance_id: id }
    );
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");
}

/// BPMN starts every process whose start event catches the message: two processes that start
/// on the same message each get an instance (only the alphabetically first did), once, alone
/// and in a batch.
#[tokio::test]
async fn every_process_that_starts_on_a_message_gets_an_instance() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    for process in ["billing", "shipping"] {
        let def = ProcessDefinition::builder(process)
            .start_on_message("OrderPlaced")
            .receive("wait", "Never")
            .end("done")
            .build()
            .unwrap();
        engine.deploy(&def).await.unwrap();
    }
    let (first, also) = match engine
        .send(Message::new("OrderPlaced", "o-1", "m-1"))
        .await
        .unwrap()
    {
        Delivery::Started { instance_id, also } => (instance_id, also),
        other => panic!("{other:?}"),
    };
    assert_eq!(also.len(), 1);
    assert_eq!(db.store.instance(first).await.unwrap().process, "billing");
    assert_eq!(
        db.store.instance(also[0]).await.unwrap().process,
        "shipping"
    );
    // The same message again changes nothing.
    assert!(matches!(
        engine
            .send(Message::new("OrderPlaced", "o-1", "m-1"))
            .await
            .unwrap(),
        Delivery::Duplicate { .. }
    ));
    assert_eq!(db.count("instances", "").await, 2);
    // In a batch, the same.
    let out = engine
        .send_many(vec![
            Message::new("OrderPlaced", "o-2", "m-2"),
            Message::new("OrderPlaced", "o-3", "m-3"),
        ])
        .await
        .unwrap();
    for d in &out {
        assert!(
            matches!(d, Ok(Delivery::Started { also, .. }) if also.len() == 1),
            "{d:?}"
        );
    }
    assert_eq!(db.count("instances", "").await, 6);
    assert_eq!(
        db.count("instances", "WHERE process_id = 'shipping'").await,
        3
    );
}

/// A process that keeps business keys unique among running instances starts at most one
/// running instance per message key: a second start message gets the running one
/// (`return_existing`) or is dead-lettered with the reason (`refuse`), one at a time or in a
/// batch; once the instance ended, the next message starts a new one.
#[tokio::test]
async fn a_message_starts_at_most_one_running_instance_per_key_where_keys_are_unique() {
    use longrun::definition::UniqueKey;
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = |id: &str, message: &str, rule: UniqueKey| {
        ProcessDefinition::builder(id)
            .start_on_message(message)
            .unique_business_key(rule)
            .receive("wait", "Done")
            .end("end")
            .build()
            .unwrap()
    };
    engine
        .deploy(&def("refusing", "Open", UniqueKey::Refuse))
        .await
        .unwrap();
    engine
        .deploy(&def("returning", "Join", UniqueKey::ReturnExisting))
        .await
        .unwrap();

    let first = started(
        engine
            .send(Message::new("Open", "k1", "open-1"))
            .await
            .unwrap(),
    );
    match engine
        .send(Message::new("Open", "k1", "open-2"))
        .await
        .unwrap()
    {
        Delivery::DeadLettered { reason } => {
            assert!(
                reason.contains("k1") && reason.contains(&first.to_string()),
                "{reason}"
            )
        }
        other => panic!("expected a dead letter, got {other:?}"),
    }
    let joined = started(
        engine
            .send(Message::new("Join", "k1", "join-1"))
            .await
            .unwrap(),
    );
    let again = started(
        engine
            .send(Message::new("Join", "k1", "join-2"))
            .await
            .unwrap(),
    );
    assert_eq!(joined, again, "the running instance, not a second one");

    // In one batch: the second Open for k2 is refused, k3 starts.
    let out = engine
        .send_many(vec![
            Message::new("Open", "k2", "open-3"),
            Message::new("Open", "k3", "open-4"),
            Message::new("Open", "k2", "open-5"),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0], Ok(Delivery::Started { .. })), "{out:?}");
    assert!(matches!(out[1], Ok(Delivery::Started { .. })), "{out:?}");
    assert!(
        matches!(out[2], Ok(Delivery::DeadLettered { .. })),
        "{out:?}"
    );
    assert_eq!(
        db.count("instances", "WHERE process_id = 'refusing'").await,
        3
    );

    // Once k1's instance ended, the key is free again.
    engine
        .send(Message::new("Done", "k1", "done-1"))
        .await
        .unwrap();
    assert_eq!(db.store.instance(first).await.unwrap().status, "completed");
    let next = started(
        engine
            .send(Message::new("Open", "k1", "open-6"))
            .await
            .unwrap(),
    );
    assert_ne!(next, first);
}

/// Instances that start waiting in one batch take their buffered messages together: one
/// instance waiting for two messages takes both; two instances waiting for the same (name,
/// key) take one each, never the same one.
#[tokio::test]
async fn a_batch_of_new_waiters_takes_each_buffered_message_once() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let pair = ProcessDefinition::builder("pair_wait")
        .parallel("fork", ["wait_a", "wait_b"])
        .receive("wait_a", "PairA")
        .next("both")
        .receive("wait_b", "PairB")
        .next("both")
        .join("both")
        .end("done")
        .build()
        .unwrap();
    let same = ProcessDefinition::builder("same_wait")
        .receive("wait_x", "SameX")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&pair).await.unwrap();
    engine.deploy(&same).await.unwrap();
    for k in ["k1", "k2", "k3"] {
        for name in ["PairA", "PairB"] {
            let d = engine
                .send(Message::new(name, k, format!("{name}-{k}")).payload(json!({ name: k })))
                .await
                .unwrap();
            assert!(matches!(d, Delivery::Buffered { .. }), "{d:?}");
        }
    }
    for n in 1..=2 {
        let d = engine
            .send(Message::new("SameX", "dup", format!("x-{n}")).payload(json!({ "x": n })))
            .await
            .unwrap();
        assert!(matches!(d, Delivery::Buffered { .. }), "{d:?}");
    }
    let mut starts: Vec<StartRequest> = ["k1", "k2", "k3"]
        .into_iter()
        .map(|k| StartRequest::new("pair_wait", k))
        .collect();
    starts.extend((0..2).map(|_| StartRequest::new("same_wait", "dup")));
    let ids = engine.start_many(starts).await.unwrap();
    let mut xs = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let view = db.store.instance(*id).await.unwrap();
        assert_eq!(view.status, "completed", "instance {i}: {view:?}");
        if i >= 3 {
            xs.push(view.variables["x"].clone());
        } else {
            let k = ["k1", "k2", "k3"][i];
            assert_eq!(view.variables["PairA"], json!(k));
            assert_eq!(view.variables["PairB"], json!(k));
        }
    }
    xs.sort_by_key(|x| x.as_i64());
    assert_eq!(xs, vec![json!(1), json!(2)], "each SameX taken once");
    assert_eq!(db.count("inbox", "WHERE status = 'buffered'").await, 0);
    assert_eq!(db.count("inbox", "WHERE status = 'correlated'").await, 8);
}
