//! With the feature `opentelemetry`, one order's spans in two contexts form one trace: the
//! order's transitions and handler run, the bridge's delivery and the payment's transitions
//! and handler run all have the checkout's trace id and its span as their parent.

use opentelemetry::trace::{SpanId, TraceId, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use crate::common::{wait_ended, TestDb};
use longrun::bridge::Bridge;
use longrun::{Delivery, Engine, JobContext, Message, ProcessDefinition};

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT: &str = "b7ad6b7169203331";

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

// A current-thread runtime: the engines' tasks run on this thread, where the collecting
// subscriber is the default.
#[tokio::test]
async fn spans_of_one_order_join_its_trace_in_every_context() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("longrun-test")));
    let _default = tracing::subscriber::set_default(subscriber);

    let (orders, payments) = (TestDb::new().await, TestDb::new().await);
    let order = ProcessDefinition::builder("otel_order")
        .start_on_message("OtelOrderPlaced")
        .service("reserve", "otel_reserve")
        .send("charge", "OtelCharge")
        .to("payment")
        .end("done")
        .build()
        .unwrap();
    let payment = ProcessDefinition::builder("otel_payment")
        .start_on_message("OtelCharge")
        .service("charge", "otel_charge")
        .end("done")
        .build()
        .unwrap();
    let o = Engine::builder(orders.store.clone())
        .handler("otel_reserve", |_: JobContext| async {
            Ok(json!({"reserved": true}))
        })
        .build()
        .unwrap();
    let p = Engine::builder(payments.store.clone())
        .handler("otel_charge", |_: JobContext| async {
            Ok(json!({"charged": true}))
        })
        .build()
        .unwrap();
    o.deploy(&order).await.unwrap();
    p.deploy(&payment).await.unwrap();
    let (mut o_ended, mut p_ended) = (o.subscribe_ended(), p.subscribe_ended());
    let (o_run, p_run) = (o.run(), p.run());

    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let Delivery::Started { instance_id, .. } = o
        .send(Message::new("OtelOrderPlaced", "o-1", "checkout-o-1").trace("o-1", &traceparent))
        .await
        .unwrap()
    else {
        panic!("the order did not start");
    };
    wait_ended(&mut o_ended, &[instance_id]).await;
    // A drain carries what is readable now: a transaction of the running engine may hold the
    // read horizon back for a moment.
    let bridge = Bridge::new(
        &orders.store,
        &payments.store,
        "order-to-payment",
        vec!["payment".into()],
    )
    .unwrap();
    let delivered = std::cell::Cell::new(0);
    crate::common::eventually("the charge crosses to the payment context", || async {
        delivered.set(delivered.get() + bridge.drain().await.unwrap().delivered);
        delivered.get() == 1
    })
    .await;
    let paid: uuid::Uuid = payments
        .sql()
        .await
        .query_one(
            &format!(
                "SELECT instance_id FROM \"{}\".instances WHERE process_id = 'otel_payment'",
                payments.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    wait_ended(&mut p_ended, &[paid]).await;
    o_run.shutdown().await;
    p_run.shutdown().await;
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let ours: Vec<&SpanData> = spans
        .iter()
        .filter(|s| {
            attribute(s, "instance_id")
                .is_some_and(|i| i == instance_id.to_string() || i == paid.to_string())
        })
        .collect();
    let named = |name: &str, instance: uuid::Uuid| {
        ours.iter()
            .filter(|s| s.name == name && attribute(s, "instance_id") == Some(instance.to_string()))
            .count()
    };
    // The order's start, its job's result; the handler runs in each context.
    assert!(named("transition", instance_id) >= 2, "{ours:#?}");
    assert!(named("transition", paid) >= 2, "{ours:#?}");
    assert_eq!(named("handler", instance_id), 1, "{ours:#?}");
    assert_eq!(named("handler", paid), 1, "{ours:#?}");
    for s in &ours {
        assert_eq!(
            s.span_context.trace_id(),
            TraceId::from_hex(TRACE).unwrap(),
            "{} of {:?} is not in the checkout's trace",
            s.name,
            attribute(s, "instance_id")
        );
        assert_eq!(s.parent_span_id, SpanId::from_hex(PARENT).unwrap());
        assert_eq!(attribute(s, "trace_key").as_deref(), Some("o-1"));
        assert_eq!(
            attribute(s, "traceparent").as_deref(),
            Some(traceparent.as_str())
        );
    }
    // A malformed traceparent links nothing (and a message with one is refused anyway).
    assert!(longrun::telemetry::remote_parent("00-zz-b7ad6b7169203331-01").is_none());
    assert!(longrun::telemetry::remote_parent(&traceparent).is_some());
}
