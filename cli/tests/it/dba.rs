//! Migration SQL a DBA applies with their own tools: `longrun migrate --print [--from N]` and
//! `--out DIR --format plain|flyway`, applied with psql, then seen as applied by `longrun
//! migrate` and run on by an engine.

use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::common::{wait_ended, TestDb};
use longrun::machine::Status;
use longrun::{Engine, JobContext, ProcessDefinition, StartRequest};

fn longrun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(args)
        .env_remove("LONGRUN_SCHEMA")
        .output()
        .expect("run longrun")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Apply SQL with psql as a DBA would: stop at the first error, one session.
fn psql(sql: &str) -> Output {
    use std::io::Write;
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]);
    if let Ok(url) = std::env::var("DATABASE_URL") {
        cmd.args(["-d", &url]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql is installed");
    // psql stops reading at the first error (ON_ERROR_STOP): the rest of a long script then
    // meets a closed pipe, and psql's exit status says what happened.
    match child.stdin.take().unwrap().write_all(sql.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other.unwrap(),
    }
    child.wait_with_output().unwrap()
}

fn up_to_date(schema: &str) {
    let out = longrun(&["--schema", schema, "migrate"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("is up to date"),
        "{}",
        text(&out.stdout)
    );
}

/// An engine runs three service steps to the end on the schema.
async fn runs(db: &TestDb) {
    let def = ProcessDefinition::builder("three")
        .service("one", "step")
        .service("two", "step")
        .service("three", "step")
        .end("done")
        .build()
        .unwrap();
    let engine = Engine::builder(db.store.clone())
        .handler("step", |job: JobContext| async move {
            Ok(json!({ job.step.clone(): true }))
        })
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let mut ended = engine.subscribe_ended();
    let running = engine.run();
    let ids = engine
        .start_many(
            (0..5)
                .map(|i| StartRequest::new("three", format!("k{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let ends = wait_ended(&mut ended, &ids).await;
    running.shutdown().await;
    assert!(ends.iter().all(|e| e.status == Status::Completed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_sql_applies_with_psql_and_longrun_sees_it_applied() {
    let db = TestDb::empty().await;
    let schema = db.schema().to_string();
    let printed = longrun(&["--schema", &schema, "migrate", "--print"]);
    assert!(printed.status.success(), "{}", text(&printed.stderr));
    let script = text(&printed.stdout);
    let applied = psql(&script);
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let latest = longrun::store::migrations_for_schema(&schema).len() as i64;
    assert_eq!(db.count("schema_migrations", "").await, latest);
    up_to_date(&schema);
    assert!(db.store.pending_migrations().await.unwrap().is_empty());
    runs(&db).await;

    // Applied twice: refused by the script's own check, nothing changes.
    let again = psql(&script);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains(&format!("migrate --print --from {latest}")),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(db.count("schema_migrations", "").await, latest);
    // What a schema at the latest version needs: nothing but the checks.
    let nothing = longrun(&[
        "--schema",
        &schema,
        "migrate",
        "--print",
        "--from",
        &latest.to_string(),
    ]);
    assert!(nothing.status.success());
    assert!(!text(&nothing.stdout).contains("-- migration "));
    let applied = psql(&text(&nothing.stdout));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    // A version this build does not have is a usage error.
    let beyond = longrun(&["--schema", &schema, "migrate", "--print", "--from", "99"]);
    assert_eq!(beyond.status.code(), Some(2));
    assert!(text(&beyond.stderr).contains("migrations are 1 to"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_apply_in_order_and_print_from_picks_up_where_they_stopped() {
    let db = TestDb::empty().await;
    let schema = db.schema().to_string();
    let dir = std::env::temp_dir().join(format!("longrun-dba-{schema}"));
    let out = longrun(&[
        "--schema",
        &schema,
        "migrate",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files[0].file_name().unwrap(), "0001_core.sql");
    // The first five with psql, one file at a time; the fifth again is refused.
    for f in &files[..5] {
        let applied = psql(&std::fs::read_to_string(f).unwrap());
        assert!(
            applied.status.success(),
            "{}: {}",
            f.display(),
            text(&applied.stderr)
        );
    }
    let again = psql(&std::fs::read_to_string(&files[4]).unwrap());
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(db.count("schema_migrations", "").await, 5);
    // The rest as one printed script from 5.
    let rest = longrun(&["--schema", &schema, "migrate", "--print", "--from", "5"]);
    let applied = psql(&text(&rest.stdout));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    up_to_date(&schema);
    runs(&db).await;

    // Flyway's layout: V<n>__<name>.sql, no transaction control of its own.
    let fly = dir.join("flyway");
    let out = longrun(&[
        "--schema",
        &schema,
        "migrate",
        "--out",
        fly.to_str().unwrap(),
        "--format",
        "flyway",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v1 = std::fs::read_to_string(fly.join("V1__core.sql")).unwrap();
    assert!(!v1.contains("\nBEGIN;") && !v1.contains("COMMIT;"));
    assert!(fly.join("V12__unique_starts.sql").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
