use chrono::Utc;

use crate::common::{client, TestDb};
use longrun::{Consumer, OutboxMessage, ProcessDefinition, StartRequest};

/// Poll until `n` messages are visible. Transactions of other tests running at the same time
/// hold the snapshot's xmin back, which delays (never skips) what a consumer sees.
async fn poll_until(c: &Consumer, n: usize) -> Vec<OutboxMessage> {
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let batch = c.poll(Utc::now(), 10).await.unwrap().expect("lease held");
        if batch.len() >= n || std::time::Instant::now() > guard {
            return batch;
        }
        tokio::task::yield_now().await;
    }
}

fn payer() -> ProcessDefinition {
    ProcessDefinition::builder("payer")
        .send("charge", "RetrievePayment")
        .to("payment")
        .send("tell", "ChargeRequested")
        .receive("wait", "PaymentReceived")
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_participant_reads_its_topic_from_a_durable_position() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&payer()).await.unwrap();
    let ids = engine
        .start_many(
            (0..3)
                .map(|i| StartRequest::new("payer", format!("o{i}")))
                .collect(),
        )
        .await
        .unwrap();

    let payment = db
        .store
        .consumer("payment-service", vec!["payment".into()], "p-1");
    let batch = poll_until(&payment, 3).await;
    assert_eq!(batch.len(), 3, "only the commands to payment");
    assert!(batch
        .iter()
        .all(|m| m.name == "RetrievePayment" && m.kind == "command"));
    assert_eq!(batch.iter().map(|m| m.instance_id).collect::<Vec<_>>(), ids);

    // Another holder is kept out while the lease runs.
    let rival = db
        .store
        .consumer("payment-service", vec!["payment".into()], "p-2");
    assert!(rival.poll(Utc::now(), 10).await.unwrap().is_none());

    // Unacknowledged messages are read again; acknowledged ones are not.
    assert_eq!(
        payment.poll(Utc::now(), 10).await.unwrap().unwrap().len(),
        3
    );
    payment.ack(Utc::now(), &batch[1]).await.unwrap();
    let rest = payment.poll(Utc::now(), 10).await.unwrap().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].message_id, batch[2].message_id);
    payment.ack(Utc::now(), &rest[0]).await.unwrap();
    assert!(payment
        .poll(Utc::now(), 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());

    // After release, the rival takes over from the checkpoint; the old holder is fenced out.
    payment.release().await.unwrap();
    assert!(rival
        .poll(Utc::now(), 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
    assert!(matches!(
        payment.ack(Utc::now(), &rest[0]).await,
        Err(longrun::Error::Conflict(_))
    ));

    // Events go to the topic named after them, read by any consumer of it.
    let audit = db
        .store
        .consumer("audit", vec!["ChargeRequested".into()], "a-1");
    assert_eq!(poll_until(&audit, 3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_late_is_read_late_not_skipped() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&payer()).await.unwrap();
    let reader = db
        .store
        .consumer("payment-service", vec!["payment".into()], "p-1");

    // T1 writes first (lower position) but stays open...
    let mut c = db.sql().await;
    let t1 = c.transaction().await.unwrap();
    let slow = engine
        .start_tx(&t1, StartRequest::new("payer", "slow"))
        .await
        .unwrap();
    // ...while T2 writes later and commits first.
    let fast = engine
        .start(StartRequest::new("payer", "fast"))
        .await
        .unwrap();
    let seen = reader.poll(Utc::now(), 10).await.unwrap().unwrap();
    assert!(
        seen.is_empty(),
        "nothing is read while an older transaction is in flight"
    );
    t1.commit().await.unwrap();

    let seen = poll_until(&reader, 2).await;
    assert_eq!(
        seen.iter().map(|m| m.instance_id).collect::<Vec<_>>(),
        vec![slow, fast]
    );
    reader.ack(Utc::now(), &seen[1]).await.unwrap();
    assert!(reader
        .poll(Utc::now(), 10)
        .await
        .unwrap()
        .unwrap()
        .is_empty());
}
