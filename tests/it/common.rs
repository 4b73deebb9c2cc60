use std::collections::HashSet;
use std::time::Duration;

use longrun::store::{pg_config, StoreConfig};
use longrun::{Ended, Engine, Store};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The layout the suite's schemas are made with: `LONGRUN_TEST_LAYOUT=partitioned` runs the
/// whole suite on the partitioned layout (as CI does, a second time).
pub fn layout() -> longrun::store::Layout {
    match std::env::var("LONGRUN_TEST_LAYOUT") {
        Ok(l) => l
            .parse()
            .expect("LONGRUN_TEST_LAYOUT: plain or partitioned"),
        Err(_) => longrun::store::Layout::Plain,
    }
}

/// A migrated schema of its own, dropped on drop.
pub struct TestDb {
    pub store: Store,
    schema: String,
    /// Roles a test created, dropped after the schema (even when the test fails).
    roles: std::sync::Mutex<Vec<String>>,
}

impl TestDb {
    pub async fn new() -> TestDb {
        TestDb::new_with(layout()).await
    }

    /// A migrated schema of its own in this layout, whatever `LONGRUN_TEST_LAYOUT` says.
    pub async fn new_with(layout: longrun::store::Layout) -> TestDb {
        let db = TestDb::empty_with(layout).await;
        db.store.migrate().await.expect("migrate");
        db
    }

    /// A store on a fresh schema that is not migrated yet.
    pub async fn empty() -> TestDb {
        TestDb::empty_with(layout()).await
    }

    /// A store on a fresh schema, not migrated yet, that migrations make in this layout.
    pub async fn empty_with(layout: longrun::store::Layout) -> TestDb {
        // test_<unix seconds>_<random>: leftovers of runs that were killed (so their drop never
        // ran) are recognised by age and dropped by later runs.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let schema = format!("test_{now}_{}", &Uuid::new_v4().simple().to_string()[..12]);
        drop_leftovers(now).await;
        let mut pg = pg_config(None).unwrap();
        // Named after the schema, so cleanup can end this test's sessions.
        pg.application_name(&schema);
        let store = Store::connect_with(
            pg,
            StoreConfig {
                schema: schema.clone(),
                pool_size: 8,
                layout,
                ..StoreConfig::default()
            },
        )
        .await
        .expect("connect to Postgres (set DATABASE_URL)");
        TestDb {
            store,
            schema,
            roles: Default::default(),
        }
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drop `role` when the test ends (after its schema), pass or fail.
    pub fn cleanup_role(&self, role: &str) {
        self.roles.lock().unwrap().push(role.to_string());
    }

    /// A plain connection for checks in SQL.
    pub async fn sql(&self) -> tokio_postgres::Client {
        let (client, conn) = pg_config(None).unwrap().connect().await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// A single bigint from `sql`, with `{schema}` replaced by the quoted schema.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let c = self.sql().await;
        let sql = sql.replace("{schema}", &format!("\"{}\"", self.schema));
        c.query_one(&sql, &[]).await.unwrap().get(0)
    }

    /// `select count(*) from <schema>.<table> [where ...]`
    pub async fn count(&self, table: &str, filter: &str) -> i64 {
        let c = self.sql().await;
        let sql = format!("SELECT count(*) FROM \"{}\".{table} {filter}", self.schema);
        c.query_one(&sql, &[]).await.unwrap().get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        let roles = std::mem::take(&mut *self.roles.lock().unwrap());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = pg_config(None).unwrap().connect().await {
                    tokio::spawn(conn);
                    // The test's runtime is blocked in this drop, so its connections cannot
                    // finish their transactions: end them, then drop the schema.
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                             WHERE application_name = $1 AND pid <> pg_backend_pid()",
                            &[&schema],
                        )
                        .await;
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                    for role in roles {
                        let _ = client
                            .execute(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                 WHERE usename = $1",
                                &[&role],
                            )
                            .await;
                        let _ = client
                            .batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
                            .await;
                    }
                }
            });
        })
        .join()
        .unwrap();
    }
}

/// Wait until every instance in `ids` has ended, as reported by the engines' ended channels.
/// The timeout is a guard against a hang, not a timing assertion.
pub async fn wait_ended(rx: &mut broadcast::Receiver<Ended>, ids: &[Uuid]) -> Vec<Ended> {
    let mut want: HashSet<Uuid> = ids.iter().copied().collect();
    let mut seen = Vec::new();
    let guard = tokio::time::Instant::now() + Duration::from_secs(60);
    while !want.is_empty() {
        let e = tokio::time::timeout_at(guard, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} instances did not end", want.len()))
            .expect("ended channel");
        if want.remove(&e.instance_id) {
            seen.push(e);
        }
    }
    seen
}

/// An engine with no handlers and no workers: a client.
pub fn client(store: &Store) -> Engine {
    Engine::builder(store.clone()).build().unwrap()
}

/// Wait until `check` holds, re-reading the database; the guard is against a hang, not a
/// timing assertion.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let guard = std::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(std::time::Instant::now() < guard, "never: {what}");
        tokio::task::yield_now().await;
    }
}

/// Drop test schemas more than an hour old: what killed runs left behind.
async fn drop_leftovers(now: u64) {
    static ONCE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if ONCE.set(()).is_err() {
        return;
    }
    let Ok((client, conn)) = pg_config(None).unwrap().connect().await else {
        return;
    };
    tokio::spawn(conn);
    let Ok(rows) = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname ~ '^test_[0-9]+_[0-9a-f]+$'",
            &[],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let born: u64 = name
            .split('_')
            .nth(1)
            .and_then(|t| t.parse().ok())
            .unwrap_or(u64::MAX);
        if born.saturating_add(3600) < now {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

/// Process `p`: waits for message `Go` keyed by the variable `k`, then ends.
pub fn waits_for_go() -> longrun::ProcessDefinition {
    longrun::ProcessDefinition::builder("p")
        .receive("wait", "Go")
        .key("k")
        .end("done")
        .build()
        .unwrap()
}
