//! The statements a transition, a claim or a delivery runs for given keys read their rows
//! through an index, in the plans PostgreSQL caches for them.
//!
//! The engine prepares each statement once per connection, and PostgreSQL may keep one plan
//! for it. Two ways that went wrong: a join of an array parameter with a table, planned while
//! the table was small, hashed the array and scanned the table, and kept doing so on every
//! call as the table grew (until an ANALYZE replanned it; never on a server without
//! autovacuum). Measured before the fix: 3,007 sequential scans of `instances` reading 1.5
//! million rows for 1,000 instances run one at a time. And a statement without an index to
//! use scans at any size; the first test checks the generic plans on grown tables for that.

use serde_json::{json, Value};

use crate::common::{client, eventually, wait_ended, TestDb};
use longrun::definition::UserTask;
use longrun::store::{pg_config, StoreConfig};
use longrun::{Engine, EngineConfig, JobContext, Message, ProcessDefinition, StartRequest, Store};

/// Rows in every table the statements read, enough for more than ten pages each (below ten
/// pages PostgreSQL assumes ten for a table never vacuumed, where a scan is cheap anyway).
const ROWS: usize = 4000;

/// Statements that look rows up by key (query file, the table that must not be scanned).
const KEYED: &[(&str, &str)] = &[
    ("instances_lock", "instances"),
    ("instances_try_lock", "instances"),
    ("instances_update", "instances"),
    ("instance_get", "instances"),
    ("events_of_instance", "events"),
    ("jobs_finish", "jobs"),
    ("jobs_migrate", "jobs"),
    ("jobs_of_instance", "jobs"),
    ("jobs_withdraw", "jobs"),
    ("inbox_settle", "inbox"),
    ("inbox_take_buffered", "inbox"),
    ("subscriptions_delete", "subscriptions"),
    ("subscriptions_find_many", "subscriptions"),
    ("subscriptions_of_instance", "subscriptions"),
    ("subscription_find", "subscriptions"),
    ("timers_migrate", "timers"),
    ("timers_delete", "timers"),
    ("timers_of_instance", "timers"),
    ("task_candidates_insert", "tasks"),
    ("activity_open", "activity"),
];

pub(crate) fn query(name: &str) -> String {
    let path = format!("{}/sql/queries/{name}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// How many parameters (`$n`) a statement takes.
pub(crate) fn params(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    for (i, c) in b.iter().enumerate() {
        if *c == b'$' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                max = max.max(n);
            }
        }
    }
    max
}

/// Instances waiting for a message, a timer, a job and a task, and buffered messages.
async fn fill(db: &TestDb) {
    let engine = client(&db.store);
    start_waiting(&engine, ROWS).await;
    let messages = (0..ROWS)
        .map(|i| Message::new("PlannedUnawaited", format!("k{i}"), format!("m{i}")))
        .collect();
    for delivery in engine.send_many(messages).await.unwrap() {
        delivery.unwrap();
    }
}

/// Generic plans (ten rows assumed per array) on tables of a few thousand rows, never analyzed.
#[tokio::test]
async fn keyed_statements_use_an_index_in_the_plan_cached_for_grown_tables() {
    let db = TestDb::new().await;
    fill(&db).await;
    let c = db.sql().await;
    let schema = format!("\"{}\"", db.schema());
    c.batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    let mut scans = Vec::new();
    for (i, (name, table)) in KEYED.iter().enumerate() {
        let sql = query(name).replace("__schema__", &schema);
        let statement = format!("keyed_{i}");
        c.batch_execute(&format!("PREPARE {statement} AS {sql}"))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let nulls = vec!["NULL"; params(&sql)].join(", ");
        let args = if nulls.is_empty() {
            String::new()
        } else {
            format!("({nulls})")
        };
        let plan: Vec<String> = c
            .query(&format!("EXPLAIN EXECUTE {statement}{args}"), &[])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect();
        let scanned = format!("Seq Scan on {table} ");
        if plan.iter().any(|l| l.contains(&scanned)) {
            scans.push(format!("{name}:\n{}", plan.join("\n")));
        }
    }
    assert!(
        scans.is_empty(),
        "these statements scan their table in their generic plan:\n\n{}",
        scans.join("\n\n")
    );
}

/// Sequential scans of one of the test schema's tables so far, as flushed by backends.
async fn seq_scans(db: &TestDb, table: &str) -> i64 {
    let c = db.sql().await;
    c.query_one(
        "SELECT coalesce(sum(seq_scan), 0)::bigint FROM pg_stat_user_tables
         WHERE schemaname = $1 AND relname = $2",
        &[&db.schema(), &table],
    )
    .await
    .unwrap()
    .get(0)
}

/// What the bench's latency mode does, on one connection so that every statement's cached
/// plan is the one made while the tables were empty: instances started one at a time, each run
/// to its end, while `instances` grows. A transition must not scan the table: before the
/// `= ANY` in `instances_update` and `jobs_finish`, each transition of each instance did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_do_not_scan_a_table_that_grew_after_their_plan_was_cached() {
    const INSTANCES: usize = 150;
    let db = TestDb::new().await;
    let mut pg = pg_config(None).unwrap();
    pg.application_name(db.schema());
    let store = Store::connect_with(
        pg,
        StoreConfig {
            schema: db.schema().to_string(),
            pool_size: 1,
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    let engine = Engine::builder(store)
        .config(EngineConfig {
            activity_history: false,
            ..EngineConfig::default()
        })
        .handler("planned_noop", |_job: JobContext| async { Ok(Value::Null) })
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("planned_steps")
        .service("one", "planned_noop")
        .service("two", "planned_noop")
        .service("three", "planned_noop")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let before = (
        seq_scans(&db, "instances").await,
        seq_scans(&db, "jobs").await,
    );
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    for i in 0..INSTANCES {
        let id = engine
            .start(StartRequest::new("planned_steps", format!("s{i}")))
            .await
            .unwrap();
        wait_ended(&mut ended, &[id]).await;
    }
    running.shutdown().await;
    drop(engine);
    // A backend flushes its table statistics as it exits: end the engine's.
    let c = db.sql().await;
    c.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        &[&db.schema()],
    )
    .await
    .unwrap();
    eventually("the engine's connection closed", || async {
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&db.schema()],
            )
            .await
            .unwrap()
            .get(0);
        n == 0
    })
    .await;
    let instances = seq_scans(&db, "instances").await - before.0;
    let jobs = seq_scans(&db, "jobs").await - before.1;
    // Three transitions and a start per instance: a scan in any of them would be hundreds.
    assert!(
        instances < 20 && jobs < 20,
        "{instances} sequential scans of instances and {jobs} of jobs for {INSTANCES} instances"
    );
}

/// Deploy four processes and start `n` instances of each, which wait for a message
/// (`planned_receive-<i>`), a timer, a job (`absent_handler`) and a task (group `sales`).
pub(crate) async fn start_waiting(engine: &Engine, n: usize) {
    for def in [
        ProcessDefinition::builder("planned_receive")
            .receive("wait", "PlannedGo")
            .end("done"),
        ProcessDefinition::builder("planned_timer")
            .wait_for("nap", "PT1H")
            .end("done"),
        ProcessDefinition::builder("planned_job")
            .service("work", "absent_handler")
            .end("done"),
        ProcessDefinition::builder("planned_task")
            .user_task("approve", UserTask::new().candidate_groups(["sales"]))
            .end("done"),
    ] {
        engine.deploy(&def.build().unwrap()).await.unwrap();
    }
    for process in [
        "planned_receive",
        "planned_timer",
        "planned_job",
        "planned_task",
    ] {
        let starts = (0..n)
            .map(|i| {
                StartRequest::new(process, format!("{process}-{i}"))
                    .variables(json!({"padding": "x".repeat(200)}))
            })
            .collect();
        engine.start_many(starts).await.unwrap();
    }
}
