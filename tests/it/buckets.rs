//! The bucket layout (docs/SCALING.md): the catalog follows the rules a distributed database
//! needs, the SQL and Rust bucket functions agree, an order's rows share one bucket, and in the
//! partitioned layout a statement on one instance, job, timer, task or correlation key reads
//! one partition.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;
use uuid::Uuid;

use crate::common::{client, TestDb};
use longrun::bucket::{bucket_of, bucket_of_key, buckets_of, buckets_of_keys, in_bucket};
use longrun::definition::UserTask;
use longrun::store::Layout;
use longrun::{Message, ProcessDefinition, StartRequest};

/// The tables whose rows belong to an instance or to a correlation key.
const BUCKETED: &[&str] = &[
    "activity",
    "consumer_checkpoints",
    "events",
    "inbox",
    "instances",
    "jobs",
    "locks",
    "outbox",
    "projection_checkpoints",
    "projection_progress",
    "subscriptions",
    "task_candidates",
    "tasks",
    "timers",
];

/// (a) of the issue: the catalog lint, on both layouts.
#[tokio::test]
async fn the_catalog_keeps_the_rules_a_distributed_database_needs() {
    for layout in [Layout::Plain, Layout::Partitioned] {
        let db = TestDb::new_with(layout).await;
        let c = db.sql().await;
        let s = db.schema();
        // Which tables have a bucket column (partitions excluded: they follow their parent).
        let bucketed: BTreeSet<String> = c
            .query(
                "SELECT c.relname FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'bucket'
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
                &[&s],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let expected: BTreeSet<String> = BUCKETED.iter().map(|t| t.to_string()).collect();
        assert_eq!(bucketed, expected, "{layout:?}");
        // Every unique index (primary keys included) of a bucketed table includes bucket.
        let bad: Vec<String> = c
            .query(
                "SELECT i.indexrelid::regclass::text FROM pg_index i
                 JOIN pg_class c ON c.oid = i.indrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relname = ANY ($2) AND i.indisunique
                   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                                   WHERE a.attrelid = c.oid AND a.attname = 'bucket'
                                     AND a.attnum = ANY (i.indkey))",
                &[&s, &BUCKETED],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert!(
            bad.is_empty(),
            "{layout:?}: unique without bucket first: {bad:?}"
        );
        // Every foreign key between bucketed tables includes bucket on both sides; one from a
        // bucketed table to another goes to a reference table (definitions).
        let fks: Vec<(String, String, bool)> = c
            .query(
                "SELECT c.relname, f.relname,
                        EXISTS (SELECT 1 FROM unnest(k.conkey) AS x(n)
                                JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = x.n
                                WHERE a.attname = 'bucket')
                 FROM pg_constraint k
                 JOIN pg_class c ON c.oid = k.conrelid
                 JOIN pg_class f ON f.oid = k.confrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND k.contype = 'f' AND NOT c.relispartition
                   AND k.conparentid = 0",
                &[&s],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        for (from, to, with_bucket) in &fks {
            if BUCKETED.contains(&to.as_str()) {
                assert!(with_bucket, "{layout:?}: {from} -> {to} without bucket");
            } else {
                assert!(!BUCKETED.contains(&to.as_str()));
            }
        }
        assert!(fks
            .iter()
            .any(|(f, t, _)| f == "task_candidates" && t == "tasks"));
        // No triggers, no column filled from a sequence, no sequence at all (readers keep a
        // checkpoint per bucket, not a place in one global order).
        let triggers: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND NOT t.tgisinternal",
                &[&s],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(triggers, 0, "{layout:?}");
        let sequenced: Vec<String> = c
            .query(
                "SELECT c.relname || '.' || a.attname FROM pg_attribute a
                 JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
                   AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
                 ORDER BY 1",
                &[&s],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(sequenced, Vec::<String>::new(), "{layout:?}");
        let sequences: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind = 'S'",
                &[&s],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(sequences, 0, "{layout:?}");
        // The partitioned layout partitions exactly the bucketed tables, by hash of bucket.
        let partitioned: BTreeSet<String> = c
            .query(
                "SELECT c.relname FROM pg_partitioned_table p
                 JOIN pg_class c ON c.oid = p.partrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
                 WHERE n.nspname = $1 AND p.partstrat = 'h' AND a.attname = 'bucket'",
                &[&s],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        match layout {
            Layout::Plain => assert!(partitioned.is_empty()),
            Layout::Partitioned => assert_eq!(partitioned, expected),
        }
    }
}

/// The SQL functions compute what the Rust ones do.
#[tokio::test]
async fn sql_and_rust_put_ids_and_keys_in_the_same_buckets() {
    let db = TestDb::new().await;
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    let keys = ["", "order-42", "Bestellung-äöü", "注文", "k1", "k2"];
    for key in keys {
        let sql: i16 = c
            .query_one(&format!("SELECT {s}.bucket_of_key($1)"), &[&key])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sql, bucket_of_key(key) as i16, "{key:?}");
        let id = in_bucket(Uuid::now_v7(), bucket_of_key(key));
        let sql: i16 = c
            .query_one(&format!("SELECT {s}.bucket_of($1)"), &[&id])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sql, bucket_of(id) as i16);
    }
    let mut expected: Vec<i16> = ["k1", "k2"]
        .iter()
        .map(|k| bucket_of_key(k) as i16)
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(buckets_of_keys(&["k1", "k2", "k1"]), Some(expected));
    assert_eq!(
        buckets_of_keys(&["k1", ""]),
        None,
        "an empty key means every bucket"
    );
    let ids = [in_bucket(Uuid::now_v7(), 7), in_bucket(Uuid::now_v7(), 3)];
    assert_eq!(
        buckets_of(&[ids[0], ids[1], ids[0]]),
        vec![7, 3, 7],
        "one bucket per id, side by side"
    );
}

/// An order's rows, its child's and the message that reached it are in the bucket of its
/// business key.
#[tokio::test]
async fn an_instance_its_child_and_its_messages_share_the_bucket_of_its_key() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    for def in [
        ProcessDefinition::builder("bucket_child")
            .user_task("look", UserTask::new().candidate_users(["someone"]))
            .end("done"),
        ProcessDefinition::builder("bucket_parent")
            .call("child", "bucket_child")
            .receive("wait", "BucketGo")
            .wait_for("nap", "PT1H")
            .end("done"),
    ] {
        engine.deploy(&def.build().unwrap()).await.unwrap();
    }
    let key = "order-4711";
    let id = engine
        .start(StartRequest::new("bucket_parent", key))
        .await
        .unwrap();
    assert_eq!(bucket_of(id), bucket_of_key(key));
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    let task: Uuid = c
        .query_one(&format!("SELECT task_id FROM {s}.tasks"), &[])
        .await
        .unwrap()
        .get(0);
    engine.complete(task, "someone", json!({})).await.unwrap();
    engine
        .send(Message::new("BucketGo", key, "bucket-go-1"))
        .await
        .unwrap();
    // Now it waits at its timer; every row of every bucketed table is in one bucket (but the
    // lock rows of deploys, in the buckets of the process ids).
    let mut buckets: BTreeMap<String, BTreeSet<i16>> = BTreeMap::new();
    for table in BUCKETED {
        let only = match *table {
            "locks" => "WHERE lock_key NOT LIKE 'definition%'",
            _ => "",
        };
        for r in c
            .query(
                &format!("SELECT DISTINCT bucket FROM {s}.{table} {only}"),
                &[],
            )
            .await
            .unwrap()
        {
            buckets
                .entry(table.to_string())
                .or_default()
                .insert(r.get(0));
        }
    }
    let all: BTreeSet<i16> = buckets.values().flatten().copied().collect();
    assert_eq!(
        all,
        BTreeSet::from([bucket_of_key(key) as i16]),
        "{buckets:?}"
    );
    for table in ["instances", "events", "timers", "inbox"] {
        assert!(buckets.contains_key(table), "no {table} rows: {buckets:?}");
    }
    let instances: i64 = c
        .query_one(&format!("SELECT count(*) FROM {s}.instances"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(instances, 2, "the parent and its child");
}

/// Statements on the rows of one instance, job, timer, task or key (batches of one here), with
/// the table they must find in one partition and the arguments that name the rows (the others
/// are NULL, as is `_`). `{i}` is an instance, `{j}` a job, `{t}` a timer, `{k}` a task,
/// `{bi}` (`{bj}`, ...) the array of its bucket, `{s}` the schema.
pub(crate) const ONE_PARTITION: &[(&str, &str, &[&str])] = &[
    ("instances_lock", "instances", &["ARRAY[{i}]", "{bi}"]),
    (
        "subscriptions_delete",
        "subscriptions",
        &["ARRAY[{i}]", "ARRAY['wait']", "{bi}"],
    ),
    ("instances_try_lock", "instances", &["ARRAY[{i}]", "{bi}"]),
    (
        "instances_update",
        "instances",
        &[
            "ARRAY[{i}]",
            "_",
            "_",
            "_",
            "_",
            "_",
            "_",
            "_",
            "_",
            "_",
            "{bi}",
        ],
    ),
    ("instance_get", "instances", &["{i}"]),
    ("instance_exists", "instances", &["{i}"]),
    (
        "instance_running_by_key",
        "instances",
        &["'planned_receive'", "'planned_receive-3'"],
    ),
    ("events_of_instance", "events", &["{i}"]),
    ("activity_open", "activity", &["ARRAY[{i}]", "{bi}"]),
    ("jobs_finish", "jobs", &["ARRAY[{j}]", "_", "{bj}"]),
    ("jobs_withdraw", "jobs", &["ARRAY[{j}]", "{bj}"]),
    (
        "jobs_claim",
        "jobs",
        &[
            "ARRAY['absent_handler']",
            "now()",
            "10",
            "_",
            "_",
            "_",
            "{bj}",
        ],
    ),
    (
        "jobs_claim_lapsed",
        "jobs",
        &[
            "ARRAY['absent_handler']",
            "now()",
            "10",
            "_",
            "_",
            "_",
            "{bj}",
        ],
    ),
    (
        "jobs_migrate",
        "jobs",
        &["ARRAY[{j}]", "ARRAY['s']", "ARRAY['h']", "{bj}"],
    ),
    (
        "timers_take",
        "timers",
        &["ARRAY[{t}]", "now() + interval '2 hours'", "{bt}"],
    ),
    ("timers_delete", "timers", &["ARRAY[{t}]", "{bt}"]),
    (
        "timers_migrate",
        "timers",
        &["ARRAY[{t}]", "ARRAY['s']", "{bt}"],
    ),
    ("tasks_delete", "tasks", &["ARRAY[{k}]", "{bk}"]),
    ("task_get", "tasks", &["{k}"]),
    ("task_instance", "tasks", &["{k}"]),
    (
        "task_candidates_clear",
        "task_candidates",
        &["ARRAY[{k}]", "{bk}"],
    ),
    (
        "task_candidates_insert",
        "tasks",
        &[
            "ARRAY['group']",
            "ARRAY['explain_only']",
            "ARRAY[{k}]",
            "{bk}",
        ],
    ),
    (
        "subscription_find",
        "subscriptions",
        &["'PlannedGo'", "'planned_receive-3'"],
    ),
    (
        "subscriptions_find_many",
        "subscriptions",
        &[
            "ARRAY['PlannedGo']",
            "ARRAY['planned_receive-3']",
            "ARRAY[{s}.bucket_of_key('planned_receive-3')]",
        ],
    ),
    ("inbox_get", "inbox", &["'m1'", "'k1'"]),
    (
        "inbox_expire",
        "inbox",
        &["now()", "10", "ARRAY[{s}.bucket_of_key('k1')]"],
    ),
    ("inbox_forget", "inbox", &["'m1'", "'k1'"]),
    (
        "inbox_buffer",
        "inbox",
        &[
            "ARRAY['m1']",
            "ARRAY['k1']",
            "ARRAY[{s}.bucket_of_key('k1')]",
        ],
    ),
    (
        "inbox_settle",
        "inbox",
        &[
            "ARRAY['m1']",
            "_",
            "_",
            "_",
            "_",
            "ARRAY['k1']",
            "ARRAY[{s}.bucket_of_key('k1')]",
        ],
    ),
];

/// Statements that look in every partition: the timer scan over an engine's whole share
/// (`{all}`; a read, which locks nothing).
const EVERY_PARTITION: &[(&str, &str, &[&str])] = &[("timers_scan", "timers", &["10", "{all}"])];

/// The partitions of `table` a plan ran (`EXPLAIN ANALYZE`): those its scans name, but for
/// scans pruned as it ran (`never executed`). The partitions a `DELETE` or `UPDATE` lists as
/// the tables it may change are not read.
pub(crate) fn partitions(plan: &[String], table: &str) -> BTreeSet<String> {
    let prefix = format!("{table}_p");
    plan.iter()
        .filter(|line| line.contains(" Scan ") && !line.contains("never executed"))
        .flat_map(|line| line.split_whitespace())
        .filter(|w| {
            w.strip_prefix(&prefix)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// (c) of the issue: custom plans (the parameters known, as Citus routes a statement) of the
/// statements that lock, change or look up the rows of one instance, job, timer, task or key
/// read one partition in the partitioned layout; those listed above read every partition.
#[tokio::test]
async fn a_statement_on_one_instance_reads_one_partition() {
    let db = TestDb::new_with(Layout::Partitioned).await;
    crate::plans::start_waiting(&client(&db.store), 40).await;
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    let one = |sql: String| {
        let c = &c;
        async move { c.query_one(&sql, &[]).await.unwrap().get::<_, Uuid>(0) }
    };
    let i = one(format!(
        "SELECT instance_id FROM {s}.instances WHERE business_key = 'planned_receive-3'"
    ))
    .await;
    let j = one(format!("SELECT job_id FROM {s}.jobs LIMIT 1")).await;
    let t = one(format!("SELECT timer_id FROM {s}.timers LIMIT 1")).await;
    let k = one(format!("SELECT task_id FROM {s}.tasks LIMIT 1")).await;
    let all = format!(
        "'{{{}}}'::smallint[]",
        (0..256)
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let fill = |arg: &str| {
        arg.replace("{i}", &format!("'{i}'::uuid"))
            .replace("{j}", &format!("'{j}'::uuid"))
            .replace("{t}", &format!("'{t}'::uuid"))
            .replace("{k}", &format!("'{k}'::uuid"))
            .replace("{s}", &s)
            .replace("{bi}", &format!("ARRAY[{s}.bucket_of('{i}')]"))
            .replace("{bj}", &format!("ARRAY[{s}.bucket_of('{j}')]"))
            .replace("{bt}", &format!("ARRAY[{s}.bucket_of('{t}')]"))
            .replace("{bk}", &format!("ARRAY[{s}.bucket_of('{k}')]"))
            .replace("{all}", &all)
    };
    c.batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    let mut wrong = Vec::new();
    for (n, (name, table, args)) in ONE_PARTITION.iter().chain(EVERY_PARTITION).enumerate() {
        let values: Vec<String> = args
            .iter()
            .map(|a| if *a == "_" { "NULL".into() } else { fill(a) })
            .collect();
        let (parts, plan) = crate::groups::touched(&c, &s, name, table, values).await;
        let touched = parts.len();
        let expected = if n < ONE_PARTITION.len() { 1 } else { 16 };
        if touched != expected {
            wrong.push(format!(
                "{name}: {touched} partitions of {table}, expected {expected}:\n{plan}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The claims lock rows in one partition per statement: the buckets of each group
/// (`Store::bucket_groups`) live in one partition, and a claim of a whole group reads only it.
/// In the plain layout there is one group of all 256 buckets.
#[tokio::test]
async fn a_claim_of_a_group_of_buckets_reads_one_partition() {
    let plain = TestDb::new_with(Layout::Plain).await;
    let groups = plain.store.bucket_groups().await.unwrap();
    assert_eq!(*groups, vec![(0..256).collect::<Vec<i16>>()]);

    let db = TestDb::new_with(Layout::Partitioned).await;
    let groups = db.store.bucket_groups().await.unwrap();
    assert_eq!(groups.len(), 16);
    let all: BTreeSet<i16> = groups.iter().flatten().copied().collect();
    assert_eq!(all.len(), 256);
    assert_eq!(groups.iter().map(Vec::len).sum::<usize>(), 256);
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    c.batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    for (name, table) in [
        ("jobs_claim", "jobs"),
        ("jobs_claim_lapsed", "jobs"),
        ("inbox_expire", "inbox"),
    ] {
        for group in groups.iter() {
            let array = crate::groups::smallints(group);
            let values: Vec<String> = match name {
                "inbox_expire" => vec!["now()".into(), "10".into(), array],
                _ => vec![
                    "ARRAY['h']".into(),
                    "now()".into(),
                    "10".into(),
                    "NULL".into(),
                    "NULL".into(),
                    "NULL".into(),
                    array,
                ],
            };
            let (parts, plan) = crate::groups::touched(&c, &s, name, table, values).await;
            assert_eq!(parts.len(), 1, "{name} of {group:?}:\n{plan}");
        }
    }
}
