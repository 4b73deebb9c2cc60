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
                "UPDATE \"{}\".consumers SET last_xid = '0', last_position = 0",
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
