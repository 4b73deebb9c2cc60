//! The store's event append, one event per transaction and batched, against a real Postgres
//! (`DATABASE_URL` or the psql defaults) in a throwaway schema.

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::Map;
use uuid::Uuid;

use longrun::machine::Event;
use longrun::store::{pg_config, StoreConfig};
use longrun::Store;

fn event() -> Event {
    let mut vars = Map::new();
    vars.insert("orderId".into(), serde_json::json!("o-1"));
    vars.insert("amount".into(), serde_json::json!(42));
    Event::JobCompleted {
        step: "charge".into(),
        job_id: Uuid::from_u128(9),
        set: vars,
    }
}

fn append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = format!("bench_append_{}", &Uuid::new_v4().simple().to_string()[..8]);
    let store = rt.block_on(async {
        let s = Store::connect_with(
            pg_config(None).unwrap(),
            StoreConfig {
                schema: schema.clone(),
                pool_size: 4,
                ..StoreConfig::default()
            },
        )
        .await
        .expect("Postgres");
        s.migrate().await.unwrap();
        s
    });
    let mut group = c.benchmark_group("event append");
    for batch in [1usize, 100, 1000] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("{batch} events per transaction"), |b| {
            b.to_async(&rt).iter(|| async {
                // A fresh stream per iteration: seq 1..=batch.
                let id = Uuid::now_v7();
                let rows: Vec<_> = (1..=batch as i64).map(|s| (id, s, event())).collect();
                store.append_events_raw(&rows, Utc::now()).await.unwrap()
            })
        });
    }
    group.finish();
    rt.block_on(async {
        let (client, conn) = pg_config(None).unwrap().connect().await.unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .await
            .unwrap();
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = append
}
criterion_main!(benches);
