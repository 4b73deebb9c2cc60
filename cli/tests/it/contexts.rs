//! The commands between bounded contexts, run as a user runs them: `longrun bridge --once`
//! (directly, through NATS, through RabbitMQ) and `longrun monitor`.

use crate::cli::{longrun, stderr};
use crate::common::TestDb;

/// `longrun bridge --once`: the order context's command crosses into the payment context, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_once_carries_a_command_to_another_context() {
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    let o = crate::common::client(&orders.store);
    o.deploy(
        &longrun::ProcessDefinition::from_json(include_str!(
            "../../../examples/definitions/order.json"
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    crate::common::client(&payments.store)
        .deploy(
            &longrun::ProcessDefinition::builder("payment")
                .start_on_message("RetrievePayment")
                .receive("charged", "CardCharged")
                .end("done")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    o.send(longrun::Message::new("OrderPlaced", "o1", "o1-placed"))
        .await
        .unwrap();
    let from = format!("#{}", orders.schema());
    let args = [
        "--json",
        "bridge",
        "--from",
        &from,
        "--to",
        payments.schema(),
        "--topics",
        "payment",
        "--once",
    ];
    let out = longrun(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["delivered"].as_i64(), v["duplicates"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        payments
            .count("instances", "WHERE business_key = 'o1'")
            .await,
        1
    );
    let out = longrun(&args, &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["delivered"], 0);
    let out = longrun(&["bridge", "--from", "x", "--to", "y", "--topics", ""], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[tokio::test]
async fn monitor_reads_the_contexts_milestones_and_prints_the_flow_and_a_timeline() {
    let (orders, central) = (TestDb::new().await, TestDb::new().await);
    let o = crate::common::client(&orders.store);
    o.deploy(
        &longrun::ProcessDefinition::builder("order")
            .start_on_message("OrderPlaced")
            .send("placed", "OrderAccepted")
            .milestone("order placed")
            .receive("paid", "PaymentReceived")
            .milestone("paid")
            .end("done")
            .milestone("completed")
            .build()
            .unwrap(),
    )
    .await
    .unwrap();
    for key in ["o1", "o2"] {
        o.send(longrun::Message::new(
            "OrderPlaced",
            key,
            format!("{key}-placed"),
        ))
        .await
        .unwrap();
    }
    o.send(longrun::Message::new("PaymentReceived", "o1", "o1-paid"))
        .await
        .unwrap();
    let flow = std::env::temp_dir().join(format!("longrun-flow-{}.json", std::process::id()));
    std::fs::write(
        &flow,
        r#"{"flow": "order", "stages": [{"milestone": "order placed"}, {"milestone": "paid"}, {"milestone": "completed"}]}"#,
    )
    .unwrap();
    let source = format!("order=#{}", orders.schema());
    let flow_arg = flow.to_str().unwrap();
    let args = [
        "--schema",
        central.schema(),
        "--json",
        "monitor",
        "--source",
        &source,
        "--flow",
        flow_arg,
    ];
    let out = longrun(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let traces: Vec<i64> = v["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["traces"].as_i64().unwrap())
        .collect();
    assert_eq!(traces, [1, 0, 1], "{v}");
    // One trace's timeline, in words.
    let args = [
        "--schema",
        central.schema(),
        "monitor",
        "--source",
        &source,
        "--trace",
        "o1",
    ];
    let out = longrun(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let milestones: Vec<&str> = ["order placed", "paid", "completed"]
        .into_iter()
        .filter(|m| text.contains(m))
        .collect();
    assert_eq!(milestones.len(), 3, "{text}");
    assert!(
        stderr(&out).contains("0 milestones read"),
        "{}",
        stderr(&out)
    );
    // A source without a name is refused.
    let out = longrun(
        &[
            "--schema",
            central.schema(),
            "monitor",
            "--source",
            orders.schema(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    std::fs::remove_file(flow).unwrap();
}

#[tokio::test]
async fn bridge_once_carries_a_command_through_nats() {
    let url = "nats://127.0.0.1:4222";
    if async_nats_reachable().is_none() {
        eprintln!("SKIPPED: no NATS server at {url}");
        return;
    }
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    crate::common::client(&orders.store)
        .deploy(
            &longrun::ProcessDefinition::from_json(include_str!(
                "../../../examples/definitions/order.json"
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    crate::common::client(&payments.store)
        .deploy(
            &longrun::ProcessDefinition::builder("payment")
                .start_on_message("RetrievePayment")
                .receive("charged", "CardCharged")
                .end("done")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    crate::common::client(&orders.store)
        .send(longrun::Message::new("OrderPlaced", "o1", "o1-placed"))
        .await
        .unwrap();
    // A stream and subjects of this test's own, removed at the end.
    let stream = format!("T_{}", payments.schema());
    let prefix = format!("t_{}", payments.schema());
    let nats = [
        "--nats-stream",
        stream.as_str(),
        "--nats-prefix",
        prefix.as_str(),
    ];
    let name = format!("cli-{}", payments.schema());
    let mut args = vec!["--json", "bridge", "--from", orders.schema(), "--to", url];
    args.extend(["--topics", "payment", "--once"]);
    args.extend(nats);
    let out = longrun(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["delivered"].as_i64(), Some(1), "{v}");
    let mut args = vec!["--json", "bridge", "--from", url, "--to", payments.schema()];
    args.extend(["--topics", "payment", "--name", &name, "--once"]);
    args.extend(nats);
    let out = longrun(&args, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        payments
            .count("inbox", "WHERE name = 'RetrievePayment' AND key = 'o1'")
            .await,
        1
    );
    assert_eq!(payments.count("instances", "").await, 1);
    let js = async_nats::jetstream::new(async_nats::connect(url).await.unwrap());
    js.delete_stream(&stream).await.unwrap();
}

/// Whether something listens on NATS's port.
fn async_nats_reachable() -> Option<()> {
    std::net::TcpStream::connect("127.0.0.1:4222")
        .ok()
        .map(|_| ())
}

#[tokio::test]
async fn bridge_once_carries_a_command_through_rabbitmq() {
    let url = "amqp://127.0.0.1:5672/%2f";
    if std::net::TcpStream::connect("127.0.0.1:5672").is_err() {
        eprintln!("SKIPPED: no RabbitMQ at {url}");
        return;
    }
    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    crate::common::client(&orders.store)
        .deploy(
            &longrun::ProcessDefinition::from_json(include_str!(
                "../../../examples/definitions/order.json"
            ))
            .unwrap(),
        )
        .await
        .unwrap();
    crate::common::client(&payments.store)
        .deploy(
            &longrun::ProcessDefinition::builder("payment")
                .start_on_message("RetrievePayment")
                .receive("charged", "CardCharged")
                .end("done")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    crate::common::client(&orders.store)
        .send(longrun::Message::new("OrderPlaced", "o1", "o1-placed"))
        .await
        .unwrap();
    // An exchange and a queue of this test's own, removed at the end; the queue (bound by the
    // delivery half) exists before anything is published.
    let exchange = format!("t_{}", payments.schema());
    let queue = format!("q_{}", payments.schema());
    let mut deliver = vec!["--json", "bridge", "--from", url, "--to", payments.schema()];
    deliver.extend(["--topics", "payment", "--name", &queue, "--once"]);
    deliver.extend(["--rabbitmq-exchange", &exchange]);
    assert!(longrun(&deliver, &[]).status.success());
    let mut publish = vec!["--json", "bridge", "--from", orders.schema(), "--to", url];
    publish.extend([
        "--topics",
        "payment",
        "--once",
        "--rabbitmq-exchange",
        &exchange,
    ]);
    let out = longrun(&publish, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = longrun(&deliver, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["delivered"].as_i64(), Some(1), "{v}");
    assert_eq!(payments.count("instances", "").await, 1);
    let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(queue.as_str().into(), Default::default())
        .await
        .unwrap();
    ch.exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
}
