//! Bridges between contexts: the order context's outbox reaches the payment context's inbox,
//! exactly once in effect.

use crate::common::{client, TestDb};
use longrun::bridge::{Bridge, Moved};
use longrun::{Delivery, Message, ProcessDefinition};

fn order() -> ProcessDefinition {
    ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json")).unwrap()
}

/// The payment context's process: started by the order's RetrievePayment command.
fn payment() -> ProcessDefinition {
    ProcessDefinition::builder("payment")
        .start_on_message("RetrievePayment")
        .receive("charged", "CardCharged")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn commands_cross_to_the_other_context_once_even_when_read_twice() {
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    let (o, p) = (client(&orders.store), client(&payments.store));
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    for key in ["o1", "o2"] {
        let d = o
            .send(Message::new("OrderPlaced", key, format!("{key}-placed")))
            .await
            .unwrap();
        assert!(matches!(d, Delivery::Started { .. }), "{d:?}");
    }
    let bridge = Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap();
    let moved = bridge.drain().await.unwrap();
    assert_eq!(
        moved,
        Moved {
            delivered: 2,
            duplicates: 0
        }
    );
    assert_eq!(
        payments
            .count(
                "instances",
                "WHERE process_id = 'payment' AND business_key IN ('o1', 'o2')"
            )
            .await,
        2
    );
    // Only the bridged topic crossed: FetchGoods (topic inventory) did not.
    assert_eq!(payments.count("inbox", "").await, 2);
    assert_eq!(bridge.drain().await.unwrap(), Moved::default());

    // A crash after the target committed and before the checkpoint moved: read again, the
    // target finds duplicates and nothing changes.
    orders
        .sql()
        .await
        .execute(
            &format!(
                "UPDATE \"{}\".consumer_checkpoints SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0",
                orders.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let again = bridge.drain().await.unwrap();
    assert_eq!((again.delivered, again.duplicates), (0, 2));
    assert_eq!(payments.count("instances", "").await, 2);

    // One holder at a time: while one holds the lease, a second bridge of the same name
    // waits for it.
    assert!(bridge.step().await.unwrap().is_some());
    let other = Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap();
    assert_eq!(other.step().await.unwrap(), None);
    assert!(Bridge::new(&orders.store, &payments.store, "x", vec![]).is_err());
}

#[tokio::test]
async fn a_running_bridge_carries_messages_as_they_come() {
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    let (o, p) = (client(&orders.store), client(&payments.store));
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    let bridge = Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move { bridge.run(stop).await });
    o.send(Message::new("OrderPlaced", "o7", "o7-placed"))
        .await
        .unwrap();
    crate::common::eventually("the payment starts in the other context", || async {
        payments
            .count("instances", "WHERE business_key = 'o7'")
            .await
            == 1
    })
    .await;
    stop_tx.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test]
async fn a_trace_follows_the_order_across_contexts() {
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    let (o, p) = (client(&orders.store), client(&payments.store));
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    // One order placed under the checkout's trace, one without: it starts its own, under its
    // business key, with the instance id as the trace id.
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let traced = o
        .send(Message::new("OrderPlaced", "o1", "o1-placed").trace("checkout-17", tp))
        .await
        .unwrap();
    let plain = o
        .send(Message::new("OrderPlaced", "o2", "o2-placed"))
        .await
        .unwrap();
    let (
        Delivery::Started {
            instance_id: i1, ..
        },
        Delivery::Started {
            instance_id: i2, ..
        },
    ) = (traced, plain)
    else {
        panic!("not started");
    };
    let state = |db: &TestDb, id: uuid::Uuid| {
        let store = db.store.clone();
        async move { store.instance(id).await.unwrap() }
    };
    let t1 = state(&orders, i1).await.trace.unwrap();
    assert_eq!(
        (t1.key.as_str(), t1.traceparent.as_str()),
        ("checkout-17", tp)
    );
    let t2 = state(&orders, i2).await.trace.unwrap();
    assert_eq!(t2.key, "o2");
    assert_eq!(
        t2.traceparent,
        format!("00-{}-{}-01", i2.simple(), &i2.simple().to_string()[16..])
    );
    assert!(longrun::machine::Trace::valid_traceparent(&t2.traceparent));
    // What each order sends carries its trace; the payment context's instance continues it.
    Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap()
    .drain()
    .await
    .unwrap();
    for (key, trace) in [("o1", &t1), ("o2", &t2)] {
        let row = orders
            .sql()
            .await
            .query_one(
                &format!(
                    "SELECT trace_key, traceparent FROM \"{}\".outbox WHERE name = 'RetrievePayment' AND key = $1",
                    orders.schema()
                ),
                &[&key],
            )
            .await
            .unwrap();
        assert_eq!(
            row.get::<_, Option<String>>(0).as_deref(),
            Some(trace.key.as_str())
        );
        assert_eq!(
            row.get::<_, Option<String>>(1).as_deref(),
            Some(trace.traceparent.as_str())
        );
        let id: uuid::Uuid = payments
            .sql()
            .await
            .query_one(
                &format!(
                    "SELECT instance_id FROM \"{}\".instances WHERE business_key = $1",
                    payments.schema()
                ),
                &[&key],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            state(&payments, id).await.trace.as_ref(),
            Some(trace),
            "{key}"
        );
    }
    // A traceparent that is not W3C's is refused, nothing written.
    let e = o
        .send(Message::new("OrderPlaced", "o3", "o3-placed").trace("k", "00-abc-01"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid traceparent"), "{e}");
    assert_eq!(orders.count("inbox", "WHERE key = 'o3'").await, 0);
}
