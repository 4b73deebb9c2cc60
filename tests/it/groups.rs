//! A statement that locks rows of several buckets locks those of one group of buckets
//! (`Store::bucket_groups`: one partition here; on Citus, one shard, where a `FOR UPDATE` across
//! shards is refused): a batch runs it once per group (`Store::split_by_group`). Checked on the
//! partitioned layout with custom plans, as `buckets.rs` checks the statements on one key.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use crate::buckets::{partitions, ONE_PARTITION};
use crate::common::{client, TestDb};
use longrun::bucket::bucket_of_key;
use longrun::store::Layout;

/// Statements that lock rows of a batch's buckets, run once per group, and the table whose
/// partitions they lock.
const PER_GROUP: &[(&str, &str)] = &[
    ("instances_lock", "instances"),
    ("instances_try_lock", "instances"),
    ("inbox_take_buffered", "inbox"),
    ("retention_inbox", "inbox"),
    ("retention_locks", "locks"),
    ("retention_outbox", "outbox"),
    ("retention_instances", "instances"),
];

/// Statements that lock rows only of tables a distributed database copies to every node (Citus
/// reference tables: consumers, projections, signals, start timers).
const REFERENCE_ONLY: &[&str] = &[
    "consumer_ack",
    "projection_claim",
    "projection_lock",
    "signal_next",
    "start_timers_due",
];

pub(crate) fn smallints(b: &[i16]) -> String {
    let list: Vec<String> = b.iter().map(i16::to_string).collect();
    format!("'{{{}}}'::smallint[]", list.join(","))
}

fn uuids(ids: &[Uuid]) -> String {
    let list: Vec<String> = ids.iter().map(|i| format!("'{i}'::uuid")).collect();
    format!("ARRAY[{}]::uuid[]", list.join(","))
}

fn texts(t: &[String]) -> String {
    let list: Vec<String> = t.iter().map(|k| format!("'{k}'")).collect();
    format!("ARRAY[{}]::text[]", list.join(","))
}

/// The partitions of `table` that `name`, given `values` (the rest `NULL`), reads as it runs
/// (rolled back), and the plan.
pub(crate) async fn touched(
    c: &tokio_postgres::Client,
    schema: &str,
    name: &str,
    table: &str,
    mut values: Vec<String>,
) -> (BTreeSet<String>, String) {
    let sql = crate::plans::query(name).replace("__schema__", schema);
    values.resize(crate::plans::params(&sql), "NULL".into());
    // Prepared, so the statement types its parameters; run, to see the partitions pruned as
    // it runs (a batch's ids come from an array, each probe reads its bucket's partition).
    c.batch_execute(&format!("BEGIN; PREPARE touched AS {sql}"))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let plan: Vec<String> = c
        .query(
            &format!(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE touched({})",
                values.join(", ")
            ),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"))
        .iter()
        .map(|r| r.get(0))
        .collect();
    c.batch_execute("ROLLBACK; DEALLOCATE touched")
        .await
        .unwrap();
    (partitions(&plan, table), plan.join("\n"))
}

#[tokio::test]
async fn a_batch_locks_the_rows_of_one_partition_per_statement() {
    let db = TestDb::new_with(Layout::Partitioned).await;
    crate::plans::start_waiting(&client(&db.store), 40).await;
    let groups = db.store.bucket_groups().await.unwrap();
    let c = db.sql().await;
    let s = format!("\"{}\"", db.schema());
    c.batch_execute("SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();

    // The group with the most instances in distinct buckets, and one of each of its buckets.
    let mut by_bucket: BTreeMap<i16, Uuid> = BTreeMap::new();
    for r in c
        .query(
            &format!("SELECT bucket, instance_id FROM {s}.instances"),
            &[],
        )
        .await
        .unwrap()
    {
        by_bucket.insert(r.get(0), r.get(1));
    }
    let in_group = |g: &Vec<i16>| -> Vec<(i16, Uuid)> {
        g.iter()
            .filter_map(|b| by_bucket.get(b).map(|i| (*b, *i)))
            .collect()
    };
    let (gi, group) = groups
        .iter()
        .enumerate()
        .max_by_key(|(_, g)| in_group(g).len())
        .unwrap();
    let mine = in_group(group);
    assert!(
        mine.len() >= 2,
        "40 instances of each of 4 processes fill 2 buckets of a group"
    );
    let (buckets, ids): (Vec<i16>, Vec<Uuid>) = mine.into_iter().unzip();
    // Correlation keys in three buckets of the group.
    let mut keys: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for k in (0..).map(|i| format!("key-{i}")) {
        let b = i16::from(bucket_of_key(&k));
        if group.contains(&b) && seen.insert(b) {
            keys.push(k);
        }
        if keys.len() == 3 {
            break;
        }
    }
    let n = keys.len();
    for (name, table) in PER_GROUP {
        let values: Vec<String> = match *name {
            "instances_lock" | "instances_try_lock" => {
                vec![uuids(&ids), smallints(&buckets), smallints(group)]
            }
            "inbox_take_buffered" => vec![
                texts(&vec!["PlannedGo".to_string(); n]),
                texts(&keys),
                format!("ARRAY[{}]::int[]", vec!["1"; n].join(",")),
                "now()".into(),
                "ARRAY[]::text[]".into(),
                smallints(group),
            ],
            "retention_instances" => vec![
                "'planned_receive'".into(),
                "1".into(),
                "now()".into(),
                "10".into(),
                smallints(group),
            ],
            _ => vec!["now()".into(), "10".into(), smallints(group)],
        };
        let (parts, plan) = touched(&c, &s, name, table, values).await;
        assert_eq!(parts.len(), 1, "{name} of group {gi}:\n{plan}");
    }

    // Not split, a batch across two groups locks in two partitions: what the split prevents.
    let (other_group, other) = groups
        .iter()
        .filter(|g| *g != group)
        .find_map(|g| in_group(g).first().map(|o| (g, *o)))
        .unwrap();
    let both: Vec<i16> = group.iter().chain(other_group).copied().collect();
    let (parts, plan) = touched(
        &c,
        &s,
        "instances_lock",
        "instances",
        vec![
            uuids(&[ids[0], other.1]),
            smallints(&[buckets[0], other.0]),
            smallints(&both),
        ],
    )
    .await;
    assert_eq!(parts.len(), 2, "{plan}");
}

/// Every statement that takes row locks (`FOR UPDATE`, `FOR SHARE`, `SKIP LOCKED`) is checked
/// to lock in one partition: on one key (`buckets::ONE_PARTITION`), per group (above), or on
/// tables copied to every node. A new one must join a list, and so its test.
#[test]
fn every_locking_statement_is_checked_to_lock_in_one_place() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/sql/queries");
    let checked: BTreeSet<&str> = ONE_PARTITION
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PER_GROUP.iter().map(|(n, _)| *n))
        .chain(REFERENCE_ONLY.iter().copied())
        .collect();
    let mut locking = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let code: String = text
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
            .to_uppercase();
        if ["FOR UPDATE", "FOR SHARE", "SKIP LOCKED", "FOR NO KEY"]
            .iter()
            .any(|w| code.contains(w))
        {
            locking.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    locking.sort();
    assert!(locking.len() >= 15, "{locking:?}");
    let unchecked: Vec<&String> = locking
        .iter()
        .filter(|n| !checked.contains(n.as_str()))
        .collect();
    assert!(
        unchecked.is_empty(),
        "locking statements no test checks: {unchecked:?}"
    );
}
