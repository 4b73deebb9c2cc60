//! Outbox consumers and projections keep a checkpoint per bucket: each bucket is read on its
//! own, in order, from where the reader stands in it, and no order across buckets is assumed.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use uuid::Uuid;

use crate::common::{client, TestDb};
use crate::consumer::payer;
use longrun::bucket::bucket_of_key;
use longrun::StartRequest;

/// `n` business keys whose instances land in bucket `bucket`.
fn keys_in(bucket: u8, n: usize, prefix: &str) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| bucket_of_key(k) == bucket)
        .take(n)
        .collect()
}

#[tokio::test]
async fn a_consumer_reads_each_bucket_in_order_from_its_own_checkpoint() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&payer()).await.unwrap();
    // A backlog of 30 instances (60 messages) in one bucket, 3 instances in another.
    let (busy, quiet) = (bucket_of_key("busy"), bucket_of_key("quiet"));
    assert_ne!(busy, quiet);
    let keys: Vec<String> = keys_in(busy, 30, "b")
        .into_iter()
        .chain(keys_in(quiet, 3, "q"))
        .collect();
    for k in &keys {
        engine.start(StartRequest::new("payer", k)).await.unwrap();
    }
    let reader = db.store.consumer(
        "audit",
        vec!["payment".into(), "ChargeRequested".into()],
        "a-1",
    );

    // The first batch holds the quiet bucket's messages too: the busy one's backlog does not
    // keep them waiting (a read goes round the buckets, not down one global order).
    let first = reader.poll(Utc::now(), 10).await.unwrap().unwrap();
    assert_eq!(first.len(), 10);
    assert!(first.iter().any(|m| m.bucket == i16::from(quiet)));
    assert!(first.iter().any(|m| m.bucket == i16::from(busy)));

    // Acknowledge half of each batch: what is left is read again, nothing is read twice
    // once acknowledged, nothing is skipped.
    let mut acked: Vec<longrun::OutboxMessage> = Vec::new();
    for _ in 0..100 {
        let batch = reader.poll(Utc::now(), 10).await.unwrap().unwrap();
        if batch.is_empty() {
            break;
        }
        let half = batch.len().div_ceil(2);
        reader.ack(Utc::now(), &batch[..half]).await.unwrap();
        acked.extend(batch.into_iter().take(half));
    }
    assert_eq!(
        acked.len(),
        66,
        "two messages per instance, each acknowledged once"
    );
    let ids: HashSet<Uuid> = acked.iter().map(|m| m.message_id).collect();
    assert_eq!(ids.len(), 66);
    // In each bucket, in the order they were written: (xid, instance, seq) rises, and an
    // instance's command (seq 2) comes before its event (seq 3).
    let mut by_bucket: BTreeMap<i16, Vec<(i64, Uuid, i64)>> = BTreeMap::new();
    for m in &acked {
        by_bucket
            .entry(m.bucket)
            .or_default()
            .push((m.xid, m.instance_id, m.seq));
    }
    assert_eq!(by_bucket.keys().copied().collect::<Vec<_>>(), {
        let mut b = vec![i16::from(busy), i16::from(quiet)];
        b.sort();
        b
    });
    for read in by_bucket.values() {
        assert!(read.windows(2).all(|w| w[0] < w[1]), "{read:?}");
    }

    // One checkpoint per bucket: 256 rows, and only the two buckets read have moved, each to
    // its last message.
    let c = db.sql().await;
    let rows = c
        .query(
            &format!(
                "SELECT bucket, last_xid::text::bigint, last_instance, last_seq
                 FROM \"{}\".consumer_checkpoints WHERE name = 'audit' ORDER BY bucket",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 256);
    let moved: BTreeMap<i16, (i64, Uuid, i64)> = rows
        .iter()
        .filter(|r| r.get::<_, i64>(3) > 0)
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3))))
        .collect();
    let last: BTreeMap<i16, (i64, Uuid, i64)> = by_bucket
        .iter()
        .map(|(b, read)| (*b, *read.last().unwrap()))
        .collect();
    assert_eq!(moved, last);
}

#[tokio::test]
async fn a_projection_moves_the_checkpoint_of_each_bucket_it_read() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&payer()).await.unwrap();
    let keys = ["p1", "p2", "p3", "p4", "p5"];
    for k in keys {
        engine.start(StartRequest::new("payer", k)).await.unwrap();
    }
    let activity = longrun::store::ActivityHistory;
    // Small batches: the checkpoints move bucket by bucket until every event is read.
    let mut batches = 0;
    while db
        .store
        .project_once(&activity, Utc::now(), 3)
        .await
        .unwrap()
        > 0
    {
        batches += 1;
        assert!(batches < 100);
    }
    assert!(batches > 1);
    let behind = db
        .scalar(
            "SELECT count(*) FROM {schema}.events e
             JOIN {schema}.projection_checkpoints k ON k.bucket = e.bucket
             WHERE k.name = 'activity'
               AND (e.xid, e.instance_id, e.seq) > (k.last_xid, k.last_instance, k.last_seq)",
        )
        .await;
    assert_eq!(behind, 0);
    let buckets: HashSet<u8> = keys.iter().map(|k| bucket_of_key(k)).collect();
    let moved = db
        .scalar(
            "SELECT count(*) FROM {schema}.projection_checkpoints
             WHERE name = 'activity' AND last_seq > 0",
        )
        .await;
    assert_eq!(moved, buckets.len() as i64);
    let listed = db.store.projections().await.unwrap();
    assert_eq!((listed[0].behind, listed[0].buckets_behind), (0, 0));
    // Every instance's whole stream reached the history (the stream ends waiting for the
    // payment: three steps began).
    assert_eq!(db.count("activity", "").await, 3 * keys.len() as i64);
}

/// Rows inserted and updated in a table of the test's schema (all partitions), as the
/// statistics have them once the writing sessions have ended.
async fn writes(db: &TestDb, table: &str) -> (i64, i64) {
    let c = db.sql().await;
    let row = c
        .query_one(
            "SELECT coalesce(sum(n_tup_ins), 0)::bigint, coalesce(sum(n_tup_upd), 0)::bigint
             FROM pg_stat_user_tables
             WHERE schemaname = $1 AND (relname = $2 OR relname LIKE $2 || '\\_p%')",
            &[&db.schema(), &table],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// While another transaction is open, PostgreSQL prunes no row version: a row updated at every
/// batch grows a chain every read walks. Checkpoints are replaced (the old row deleted, the
/// next inserted, read as the bucket's greatest), and the consumer's lease row is rewritten
/// only once a third of the lease has passed.
#[tokio::test]
async fn reading_rewrites_no_row_in_place() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&payer()).await.unwrap();
    let keys = keys_in(bucket_of_key("busy"), 8, "w");
    for k in &keys {
        engine.start(StartRequest::new("payer", k)).await.unwrap();
    }
    // A store of its own, so that its sessions end (and report their statistics) when it goes.
    let store = longrun::Store::connect_with(
        longrun::store::pg_config(None).unwrap(),
        longrun::store::StoreConfig {
            schema: db.schema().to_string(),
            pool_size: 1,
            layout: crate::common::layout(),
            ..longrun::store::StoreConfig::default()
        },
    )
    .await
    .unwrap();
    let reader = store.consumer("audit", vec!["payment".into()], "a-1");
    let mut read = 0;
    for _ in 0..20 {
        let batch = reader.poll(Utc::now(), 1).await.unwrap().unwrap();
        if batch.is_empty() {
            break;
        }
        reader.ack(Utc::now(), &batch).await.unwrap();
        read += batch.len();
    }
    assert_eq!(read, keys.len(), "each payment command read once");
    let activity = longrun::store::ActivityHistory;
    while store.project_once(&activity, Utc::now(), 2).await.unwrap() > 0 {}
    drop(reader);
    drop(store);

    crate::common::eventually("the reader's sessions reported their writes", || async {
        writes(&db, "consumer_checkpoints").await.0 >= 256 + keys.len() as i64
            && writes(&db, "projection_checkpoints").await.0 > 256
    })
    .await;
    assert_eq!(writes(&db, "consumer_checkpoints").await.1, 0);
    assert_eq!(writes(&db, "projection_checkpoints").await.1, 0);
    let (made, renewed) = writes(&db, "consumers").await;
    assert_eq!((made, renewed), (1, 0), "eight polls and acks in a second");
    // Still one checkpoint per bucket, the busy one at the last message read.
    assert_eq!(
        db.count("consumer_checkpoints", "WHERE name = 'audit'")
            .await,
        256
    );
    let behind = db
        .scalar(
            "SELECT count(*) FROM {schema}.outbox o
             JOIN {schema}.consumer_checkpoints k ON k.bucket = o.bucket AND k.name = 'audit'
             WHERE o.topic = 'payment'
               AND (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq)",
        )
        .await;
    assert_eq!(behind, 0);
}
