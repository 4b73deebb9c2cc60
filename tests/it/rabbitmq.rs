//! Bridges over RabbitMQ (feature `rabbitmq`): the order context's commands reach the payment
//! context through a durable queue, exactly once in effect, whichever half runs twice. Needs
//! RabbitMQ on 127.0.0.1:5672 (`AMQP_URL` to use another); without one the test says so and
//! passes.

use crate::common::{client, TestDb};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions, QueuePurgeOptions};
use longrun::bridge::rabbitmq::{RabbitConfig, RabbitDelivery, RabbitPublisher};
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
async fn commands_cross_over_rabbitmq_once_even_when_published_twice() {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into());
    let Ok(conn) = lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
    else {
        eprintln!("SKIPPED: no RabbitMQ at {url} (start rabbitmq-server, or set AMQP_URL)");
        return;
    };
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    // An exchange and a queue of this test's own, removed at the end.
    let config = RabbitConfig {
        exchange: format!("t_{}", orders.schema()),
        ..RabbitConfig::new(&url)
    };
    let queue = format!("q_{}", payments.schema());
    let (o, p) = (client(&orders.store), client(&payments.store));
    o.deploy(&order()).await.unwrap();
    p.deploy(&payment()).await.unwrap();
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for key in ["o1", "o2", "o3"] {
        o.send(Message::new("OrderPlaced", key, format!("{key}-placed")).trace(key, tp))
            .await
            .unwrap();
    }
    let topics = vec!["payment".to_string()];
    // The queue exists (bound) before anything is published to the exchange.
    let delivery = RabbitDelivery::connect(config.clone(), &payments.store, &queue, topics.clone())
        .await
        .unwrap();
    let publisher = RabbitPublisher::connect(&orders.store, config.clone(), "to-rabbit", topics)
        .await
        .unwrap();
    assert_eq!(publisher.drain().await.unwrap().delivered, 3);
    let delivered = delivery.drain().await.unwrap();
    assert_eq!((delivered.delivered, delivered.duplicates), (3, 0));
    assert_eq!(
        payments
            .count("instances", "WHERE process_id = 'payment'")
            .await,
        3
    );
    assert_eq!(
        payments
            .count(
                "instances",
                &format!("WHERE state->'trace'->>'traceparent' = '{tp}'")
            )
            .await,
        3,
        "the trace crossed the broker"
    );
    // The publisher crashed before its checkpoint moved: it publishes again, RabbitMQ (without
    // the deduplication plugin) delivers the copies, and the inbox drops them by their ids.
    orders
        .sql()
        .await
        .execute(
            &format!(
                "UPDATE \"{}\".consumer_checkpoints SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0 WHERE name = 'to-rabbit'",
                orders.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(publisher.drain().await.unwrap().delivered, 3);
    assert_eq!(
        delivery.drain().await.unwrap(),
        Moved {
            delivered: 0,
            duplicates: 3
        }
    );
    assert_eq!(payments.count("instances", "").await, 3);
    assert_eq!(payments.count("inbox", "").await, 3);
    let ch = conn.create_channel().await.unwrap();
    ch.queue_purge(queue.as_str().into(), QueuePurgeOptions::default())
        .await
        .unwrap();
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    ch.exchange_delete(
        config.exchange.as_str().into(),
        ExchangeDeleteOptions::default(),
    )
    .await
    .unwrap();
}
