//! The engine processes the harness starts: the order process's handler and participants,
//! recording side effects once per idempotency key, and the engine of the fencing test.

use super::*;

/// One engine process: the order process's fee handler and the participants, recording their
/// side effects once per idempotency key, replying one to three times.
pub(super) async fn worker(conn: String, seed: u64, index: usize) -> AnyResult<()> {
    let store = through_outage("connecting", || {
        let conn = conn.clone();
        async move { connect(&conn, 8).await }
    })
    .await?;
    let effects = Arc::new(Effects::new(&conn)?);
    let config = EngineConfig {
        owner: format!("chaos-engine-{index}-{}", std::process::id()),
        job_lease: chrono::Duration::seconds(3),
        consumer_lease: chrono::Duration::seconds(2),
        // A killed engine's buckets go to the others as soon as its job leases lapse.
        engine_lease: Duration::from_secs(3),
        // A card update that comes after its order was cancelled is dead-lettered soon.
        message_ttl: chrono::Duration::seconds(25),
        poll_interval: Duration::from_millis(50),
        max_poll_interval: Duration::from_millis(500),
        maintenance_interval: Duration::from_millis(500),
        // Small chunks: a broadcast spans several transactions, and kills fall between them.
        signal_batch: 7,
        ..EngineConfig::default()
    };
    let fee = {
        let effects = effects.clone();
        move |job: JobContext| {
            let effects = effects.clone();
            async move {
                // A flaky fee service: a fifth of attempts fail before doing anything.
                if draw(seed, (job.job_id, job.attempt)) < 0.2 {
                    return Err(HandlerError::new("fee service unavailable"));
                }
                effects.record(&job.job_id.to_string(), "fee").await?;
                Ok(json!({"fee": 1}))
            }
        }
    };
    let pack = {
        let effects = effects.clone();
        move |job: JobContext| {
            let effects = effects.clone();
            async move {
                // A flaky packer too: each element's job fails a fifth of its attempts.
                if draw(seed, ("pack", job.job_id, job.attempt)) < 0.2 {
                    return Err(HandlerError::new("packer busy"));
                }
                effects.record(&job.job_id.to_string(), "pack").await?;
                Ok(json!({"sku": job.variables["line"]["sku"]}))
            }
        }
    };
    let participant = |kind: &'static str| {
        let effects = effects.clone();
        move |engine: Engine, m: OutboxMessage| {
            let effects = effects.clone();
            async move {
                effects.record(&m.message_id.to_string(), kind).await?;
                for (name, payload) in replies(&m) {
                    // Each reply goes out one to three times, with the same id.
                    let copies = 1 + (draw(seed, (m.message_id, name)) * 3.0) as usize;
                    let msg = Message::new(name, m.key.clone(), format!("{}:{name}", m.message_id))
                        .payload(payload);
                    for _ in 0..copies {
                        engine
                            .send(msg.clone())
                            .await
                            .map_err(|e| HandlerError::new(e.to_string()))?;
                    }
                }
                Ok(())
            }
        }
    };
    let engine = Engine::builder(store)
        .config(config)
        .handler("charge_fee", fee)
        .handler("pack_line", pack)
        .subscriber("payment", &["payment"], participant("payment"))
        .subscriber("inventory", &["inventory"], participant("inventory"))
        .subscriber("shipping", &["shipping"], participant("shipping"))
        .build()?;
    let running = engine.run();
    let clerk = tokio::spawn(clerk(engine.clone(), format!("clerk-{index}")));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    clerk.abort();
    running.shutdown_within(Duration::from_secs(5)).await;
    Ok(())
}

/// A clerk: finishes the tasks they hold (after a restart too: the engine's index names
/// them), then claims and completes open tasks of the group `clerks`, racing the other
/// engines' clerks. A refused claim (someone was faster) or completion is simply passed over.
async fn clerk(engine: Engine, me: String) {
    use longrun::store::TaskQuery;
    loop {
        let mine = TaskQuery {
            assignee: Some(me.clone()),
            limit: 20,
            ..TaskQuery::default()
        };
        let open = TaskQuery {
            candidate_groups: vec!["clerks".into()],
            unassigned: true,
            limit: 5,
            ..TaskQuery::default()
        };
        if let Ok(page) = engine.tasks(&mine).await {
            for t in page.tasks {
                let _ = engine
                    .complete(t.task_id, &me, json!({"approved": true}))
                    .await;
            }
        }
        if let Ok(page) = engine.tasks(&open).await {
            for t in page.tasks {
                if engine.claim(t.task_id, &me).await.is_ok() {
                    let _ = engine
                        .complete(t.task_id, &me, json!({"approved": true}))
                        .await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a participant answers.
fn replies(m: &OutboxMessage) -> Vec<(&'static str, Value)> {
    let p = &m.payload;
    match m.name.as_str() {
        "RetrievePayment" => {
            if p["cardExpired"] == json!(true) && p["cardUpdated"] != json!(true) {
                let mut r = vec![("PaymentFailed", json!({"reason": "card expired"}))];
                // A customer who updates the card does so at once: the update often arrives
                // before the order waits for it.
                if p["willUpdateCard"] == json!(true) {
                    r.push(("CreditCardUpdated", json!({"cardUpdated": true})));
                }
                r
            } else {
                vec![("PaymentReceived", json!({"charged": p["amount"]}))]
            }
        }
        "FetchGoods" => vec![("GoodsFetched", json!({"items": 1}))],
        "ShipGoods" => vec![("GoodsShipped", json!({"tracking": m.key}))],
        _ => Vec::new(),
    }
}

/// The business side effects, in the harness's own table.
struct Effects {
    pool: deadpool_postgres::Pool,
    sql: String,
}

impl Effects {
    fn new(conn: &str) -> AnyResult<Effects> {
        let cfg: tokio_postgres::Config = conn.parse()?;
        let mgr = deadpool_postgres::Manager::new(cfg, tokio_postgres::NoTls);
        Ok(Effects {
            pool: deadpool_postgres::Pool::builder(mgr).max_size(8).build()?,
            sql: sql(include_str!("../../../../sql/chaos/effect.sql")),
        })
    }

    async fn record(&self, key: &str, kind: &str) -> Result<(), HandlerError> {
        let c = self
            .pool
            .get()
            .await
            .map_err(|e| HandlerError::new(e.to_string()))?;
        c.query_one(&self.sql, &[&key, &kind])
            .await
            .map_err(|e| HandlerError::new(e.to_string()))?;
        Ok(())
    }
}

/// An engine for the fencing test: its `slow` handler announces itself through `NOTIFY
/// fence_started` (the test listens), holds the job, then returns `{"by": "stopped engine"}`.
pub(super) async fn fence_worker(
    conn: Option<String>,
    schema: String,
    hold_ms: u64,
    lease_ms: i64,
) -> AnyResult<()> {
    let store = Store::connect_with(
        pg_config(conn.as_deref())?,
        StoreConfig {
            schema,
            pool_size: 4,
            ..StoreConfig::default()
        },
    )
    .await?;
    let (notify, driver) = pg_config(conn.as_deref())?.connect().await?;
    tokio::spawn(driver);
    let notify = Arc::new(notify);
    let config = EngineConfig {
        owner: format!("fence-worker-{}", std::process::id()),
        job_lease: chrono::Duration::milliseconds(lease_ms),
        // Stopped, it stops counting among the engines when its job lease lapses too.
        engine_lease: Duration::from_millis(lease_ms.max(100) as u64),
        poll_interval: Duration::from_millis(20),
        max_poll_interval: Duration::from_millis(100),
        maintenance_interval: Duration::from_secs(3600),
        activity_history: false,
        ..EngineConfig::default()
    };
    let engine = Engine::builder(store)
        .config(config)
        .handler("slow", move |job: JobContext| {
            let notify = notify.clone();
            async move {
                notify
                    .execute(
                        include_str!("../../../../sql/chaos/fence_started.sql"),
                        &[&job.job_id.to_string()],
                    )
                    .await
                    .map_err(|e| HandlerError::new(e.to_string()))?;
                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                Ok(json!({"by": "stopped engine"}))
            }
        })
        .build()?;
    let running = engine.run();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    term.recv().await;
    running.shutdown_within(Duration::from_secs(10)).await;
    Ok(())
}
