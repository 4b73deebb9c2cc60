//! Bridges over NATS JetStream (feature `nats`): the order context's commands reach the payment
//! context through a stream, exactly once in effect, whichever half is read twice. Needs a
//! NATS server with JetStream on 127.0.0.1:4222 (`NATS_URL` to use another); without one the
//! test says so and passes.

use crate::common::{client, TestDb};
use longrun::bridge::nats::{NatsConfig, NatsDelivery, NatsPublisher};
use longrun::bridge::Moved;
use longrun::{Message, ProcessDefinition};

fn order() -> ProcessDefinition {
    ProcessDefinition::from_json(include_str!("../../examples/definitions/order.json")).unwrap()
}

fn payment() -> ProcessDefinition {
    ProcessDefinition::builder("payment")
        .start_on_message("RetrievePayment")
        .receive("charged", "CardCharged")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn commands_cross_over_jetstream_once_even_when_published_or_delivered_twice() {
    let url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let Ok(nats) = async_nats::connect(&url).await else {
        eprintln!("SKIPPED: no NATS server at {url} (start nats-server -js, or set NATS_URL)");
        return;
    };
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    // A stream and subjects of this test's own, removed at the end.
    let token = orders
        .schema()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
    let config = NatsConfig {
        stream: format!("T_{token}"),
        prefix: format!("t_{token}"),
        ..NatsConfig::new(&url)
    };
    let (o, p) = (client(&orders.store), client(&payments.store));
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for key in ["o1", "o2", "o3"] {
        o.send(Message::new("OrderPlaced", key, format!("{key}-placed")).trace(key, tp))
            .await
            .unwrap();
    }
    let publisher = NatsPublisher::connect(
        &orders.store,
        config.clone(),
        "to-nats",
        vec!["payment".into()],
    )
    .await
    .unwrap();
    let delivery = NatsDelivery::connect(
        config.clone(),
        &payments.store,
        "payment-inbox",
        vec!["payment".into()],
    )
    .await
    .unwrap();
    let published = publisher.drain().await.unwrap();
    assert_eq!(
        published,
        Moved {
            delivered: 3,
            duplicates: 0
        }
    );
    let delivered = delivery.drain().await.unwrap();
    assert_eq!((delivered.delivered, delivered.duplicates), (3, 0));
    assert_eq!(
        payments
            .count("instances", "WHERE process_id = 'payment'")
            .await,
        3
    );
    // The trace crossed the broker too.
    let traced = payments
        .count(
            "instances",
            &format!("WHERE state->'trace'->>'traceparent' = '{tp}'"),
        )
        .await;
    assert_eq!(traced, 3);

    // The publisher crashed before its checkpoint moved: it publishes again, JetStream drops
    // the copies by their ids, and nothing new reaches the payment context.
    orders
        .sql()
        .await
        .execute(
            &format!(
                "UPDATE \"{}\".consumer_checkpoints SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0 WHERE name = 'to-nats'",
                orders.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let again = publisher.drain().await.unwrap();
    assert_eq!((again.delivered, again.duplicates), (0, 3));
    assert_eq!(delivery.drain().await.unwrap(), Moved::default());

    // The delivery side lost its acknowledgements: a new durable consumer reads the stream
    // from the start, and the inbox finds every message a duplicate.
    let js = async_nats::jetstream::new(nats);
    let stream = js.get_stream(&config.stream).await.unwrap();
    stream.delete_consumer("payment-inbox").await.unwrap();
    let replay = NatsDelivery::connect(
        config.clone(),
        &payments.store,
        "payment-inbox",
        vec!["payment".into()],
    )
    .await
    .unwrap()
    .drain()
    .await
    .unwrap();
    assert_eq!((replay.delivered, replay.duplicates), (0, 3));
    assert_eq!(payments.count("instances", "").await, 3);
    assert_eq!(payments.count("inbox", "").await, 3);
    js.delete_stream(&config.stream).await.unwrap();
}
