use crate::common::TestDb;
use longrun::Error;

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = TestDb::empty().await;
    let all: Vec<i32> = (1..=22).collect();
    assert_eq!(db.store.migrate().await.unwrap(), all);
    assert_eq!(db.store.migrate().await.unwrap(), Vec::<i32>::new());
    assert_eq!(db.count("schema_migrations", "").await, 22);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_once() {
    let db = TestDb::empty().await;
    let (a, b, c) = tokio::join!(db.store.migrate(), db.store.migrate(), db.store.migrate());
    let mut applied: Vec<i32> = [a.unwrap(), b.unwrap(), c.unwrap()].concat();
    applied.sort();
    assert_eq!(applied, (1..=22).collect::<Vec<i32>>());
}

#[tokio::test]
async fn a_changed_migration_is_refused() {
    let db = TestDb::new().await;
    let c = db.sql().await;
    c.execute(
        &format!(
            "UPDATE \"{}\".schema_migrations SET checksum = 'abc'",
            db.schema()
        ),
        &[],
    )
    .await
    .unwrap();
    match db.store.migrate().await {
        Err(Error::MigrationChanged {
            version: 1,
            applied,
            ..
        }) => assert_eq!(applied, "abc"),
        other => panic!("expected MigrationChanged, got {other:?}"),
    }
}

#[tokio::test]
async fn every_table_and_column_has_a_comment() {
    let db = TestDb::new().await;
    let c = db.sql().await;
    let rows = c
        .query(
            "SELECT c.relname, a.attname
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND (col_description(c.oid, a.attnum) IS NULL OR obj_description(c.oid, 'pg_class') IS NULL)",
            &[&db.schema()],
        )
        .await
        .unwrap();
    let missing: Vec<String> = rows
        .iter()
        .map(|r| format!("{}.{}", r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    assert!(missing.is_empty(), "no COMMENT on {missing:?}");
}

#[tokio::test]
async fn bad_schema_names_are_refused() {
    for bad in [
        "",
        "Upper",
        "1abc",
        "a-b",
        "a\"b",
        "a\";drop",
        "a;drop table x",
        &"x".repeat(64),
    ] {
        let r = longrun::store::validate_schema(bad);
        assert!(
            matches!(r, Err(Error::InvalidSchema(_))),
            "{bad:?} accepted"
        );
    }
    longrun::store::validate_schema("longrun_2").unwrap();
}

#[tokio::test]
async fn the_reporting_role_reads_every_view_and_no_table() {
    let db = TestDb::new().await;
    let c = db.sql().await;
    c.batch_execute("SET ROLE longrun_reporting").await.unwrap();
    let schema = db.schema();
    for view in longrun::store::sql::REPORTS {
        c.query(
            &format!("SELECT * FROM \"{schema}\".report_{view} LIMIT 1"),
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("report_{view}: {e}"));
    }
    for table in [
        "instances",
        "events",
        "jobs",
        "outbox",
        "inbox",
        "timers",
        "subscriptions",
        "definitions",
        "activity",
        "projections",
        "schema_migrations",
        "step_counts",
        "version_counts",
    ] {
        let read = c
            .query(&format!("SELECT 1 FROM \"{schema}\".{table} LIMIT 1"), &[])
            .await
            .map_err(db_message)
            .unwrap_err();
        assert!(
            read.to_string().contains("permission denied"),
            "{table}: {read}"
        );
        let write = c
            .execute(&format!("DELETE FROM \"{schema}\".{table}"), &[])
            .await
            .map_err(db_message)
            .unwrap_err();
        assert!(
            write.to_string().contains("permission denied"),
            "{table}: {write}"
        );
    }
    let ddl = c
        .batch_execute(&format!("CREATE TABLE \"{schema}\".x (a int)"))
        .await
        .map_err(db_message)
        .unwrap_err();
    assert!(ddl.to_string().contains("permission denied"), "{ddl}");
    c.batch_execute("RESET ROLE").await.unwrap();
}

fn db_message(e: tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}
