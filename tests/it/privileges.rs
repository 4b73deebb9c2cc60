//! Least privilege: an engine works as a role granted longrun_runtime, which cannot change
//! the schema, truncate tables or read other schemas.

use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::store::{pg_config, StoreConfig};
use longrun::{Engine, JobContext, Message, ProcessDefinition, StartRequest, Store};

fn db_message(e: tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_role_does_its_work_and_nothing_more() {
    let db = TestDb::new().await;
    let schema = db.schema().to_string();
    let role = format!("rt_{}", &schema[schema.len() - 12..]);
    let other = format!("other_{}", &schema[schema.len() - 12..]);
    let admin = db.sql().await;
    db.cleanup_role(&role);
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN IN ROLE longrun_runtime; \
             CREATE SCHEMA \"{other}\"; CREATE TABLE \"{other}\".secret (v text); \
             INSERT INTO \"{other}\".secret VALUES ('do not read')"
        ))
        .await
        .unwrap();

    // An engine connected as that role runs instances end to end.
    let mut pg = pg_config(None).unwrap();
    pg.user(&role);
    let store = Store::connect_with(
        pg.clone(),
        StoreConfig {
            schema: schema.clone(),
            pool_size: 4,
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        store.privileges().await.unwrap(),
        longrun::store::Privileges::default()
    );
    assert!(
        db.store.privileges().await.unwrap().superuser,
        "the tests run as a superuser"
    );
    let engine = Engine::builder(store.clone())
        .handler("work", |job: JobContext| async move {
            Ok(json!({"step": job.step}))
        })
        .build()
        .unwrap();
    let def = ProcessDefinition::builder("least")
        .service("work", "work")
        .send("announce", "Worked")
        .receive("wait", "Go")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let ids = engine
        .start_many(
            (0..3)
                .map(|i| StartRequest::new("least", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    crate::common::eventually("all wait for Go", || async {
        db.count("subscriptions", "").await == 3
    })
    .await;
    for i in 0..3 {
        engine
            .send(Message::new("Go", format!("k{i}"), format!("go{i}")))
            .await
            .unwrap();
    }
    wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    engine
        .store()
        .project_all(&longrun::store::ActivityHistory, chrono::Utc::now, |_| {})
        .await
        .unwrap();

    // And nothing more: no DDL, no TRUNCATE, no other schema.
    let (c, conn) = pg.connect().await.unwrap();
    tokio::spawn(conn);
    for (what, stmt) in [
        (
            "create a table",
            format!("CREATE TABLE \"{schema}\".x (a int)"),
        ),
        ("truncate", format!("TRUNCATE \"{schema}\".events")),
        ("drop a table", format!("DROP TABLE \"{schema}\".events")),
        (
            "alter a table",
            format!("ALTER TABLE \"{schema}\".events ADD COLUMN x int"),
        ),
        (
            "read another schema",
            format!("SELECT * FROM \"{other}\".secret"),
        ),
        ("create a role", "CREATE ROLE sneaky".to_string()),
    ] {
        let e = c
            .batch_execute(&stmt)
            .await
            .map_err(db_message)
            .unwrap_err();
        assert!(
            e.contains("permission denied") || e.contains("must be owner"),
            "{what}: {e}"
        );
    }
    drop(c);
    drop(engine);
    drop(store);
    admin
        .batch_execute(&format!(
            "DROP SCHEMA \"{other}\" CASCADE; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
        ))
        .await
        .unwrap();
    crate::common::eventually("the role's sessions end", || async {
        admin
            .batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\""))
            .await
            .is_ok()
    })
    .await;
}

#[tokio::test]
async fn role_names_are_configurable_and_the_owner_role_owns_everything() {
    // A schema of its own (dropped at the end, pass or fail), migrated with custom roles.
    let db = TestDb::empty().await;
    let schema = db.schema().to_string();
    let suffix = schema[schema.len() - 10..].to_string();
    let roles = longrun::store::Roles {
        owner: format!("own_{suffix}"),
        runtime: format!("rt_{suffix}"),
        reporting: format!("rep_{suffix}"),
    };
    for r in [&roles.runtime, &roles.reporting, &roles.owner] {
        db.cleanup_role(r);
    }
    let store = Store::connect_with(
        pg_config(None).unwrap(),
        StoreConfig {
            schema: schema.clone(),
            pool_size: 2,
            roles: roles.clone(),
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let (c, conn) = pg_config(None).unwrap().connect().await.unwrap();
    tokio::spawn(conn);
    let q = |sql: String| {
        let c = &c;
        async move { c.query_one(&sql, &[]).await.unwrap().get::<_, bool>(0) }
    };
    assert!(
        q(format!(
            "SELECT nspowner::regrole::text = '{}' FROM pg_namespace WHERE nspname = '{schema}'",
            roles.owner
        ))
        .await
    );
    assert!(
        q(format!(
            "SELECT bool_and(relowner::regrole::text = '{}') FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{schema}' AND c.relkind IN ('r', 'v')",
            roles.owner
        ))
        .await,
        "every table and view belongs to the owner role"
    );
    let has = |role: &str, object: &str, privilege: &str| {
        format!("SELECT has_table_privilege('{role}', '\"{schema}\".{object}', '{privilege}')")
    };
    assert!(q(has(&roles.runtime, "events", "INSERT")).await);
    assert!(!q(has(&roles.runtime, "events", "TRUNCATE")).await);
    assert!(!q(has(&roles.runtime, "report_instances", "INSERT")).await);
    assert!(q(has(&roles.reporting, "report_instances", "SELECT")).await);
    assert!(!q(has(&roles.reporting, "instances", "SELECT")).await);
    // Migrating again (as a member of the owner role) finds nothing to do.
    assert!(store.migrate().await.unwrap().is_empty());
    // A role name that is not an identifier is refused before anything runs.
    let bad = Store::connect_with(
        pg_config(None).unwrap(),
        StoreConfig {
            schema: schema.clone(),
            pool_size: 1,
            roles: longrun::store::Roles {
                runtime: "x\"; drop".into(),
                ..Default::default()
            },
            ..StoreConfig::default()
        },
    )
    .await;
    assert!(bad.is_err());
    drop(store);
}
