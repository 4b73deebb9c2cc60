//! Least privilege as documented: `run` and `console` never migrate on their own, and an
//! engine runs as a login role that was only granted `longrun_runtime`.

use std::process::{Command, Stdio};

use longrun::store::pg_config;
use longrun::{ProcessDefinition, StartRequest};

use crate::common::{client, eventually, TestDb};

fn longrun(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_longrun"));
    c.args(args).env_remove("LONGRUN_SCHEMA");
    c
}

#[tokio::test]
async fn run_and_console_refuse_an_unmigrated_schema() {
    let db = TestDb::empty().await;
    for cmd in [
        vec!["--schema", db.schema(), "run"],
        vec![
            "--schema",
            db.schema(),
            "console",
            "--listen",
            "127.0.0.1:0",
        ],
    ] {
        let out = longrun(&cmd).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {err}");
        assert!(err.contains("is not migrated"), "{err}");
        assert!(err.contains("--migrate"), "{err}");
    }
    let tables = db
        .scalar(&format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{}'",
            db.schema()
        ))
        .await;
    assert_eq!(tables, 0, "nothing was created");
}

#[tokio::test]
async fn an_engine_runs_as_a_login_role_granted_only_longrun_runtime() {
    let db = TestDb::new().await;
    let role = format!("svc_{}", db.schema());
    db.cleanup_role(&role);
    let sql = db.sql().await;
    sql.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN; GRANT longrun_runtime TO \"{role}\""
    ))
    .await
    .unwrap();
    let engine = client(&db.store);
    engine
        .deploy(
            &ProcessDefinition::builder("p")
                .wait_for("pause", "PT1S")
                .end("done")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let id = engine.start(StartRequest::new("p", "b-1")).await.unwrap();

    // The same database, as the new role.
    let pg = pg_config(None).unwrap();
    let host = match &pg.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
    };
    let url = format!(
        "host={host} port={} dbname={} user={role}",
        pg.get_ports().first().copied().unwrap_or(5432),
        pg.get_dbname().unwrap()
    );
    let child = longrun(&["--database-url", &url, "--schema", db.schema(), "run"])
        .env("RUST_LOG", "warn,longrun=debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    eventually("the runtime role's engine fires the timer", || async {
        db.count(
            "instances",
            &format!("WHERE instance_id = '{id}' AND status = 'completed'"),
        )
        .await
            == 1
    })
    .await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        !err.contains("ERROR") && !err.contains("permission denied"),
        "{err}"
    );
    assert!(!err.contains("superuser"), "{err}");
    // Fired timers are visible at debug level.
    assert!(
        err.contains("fired a timer") && err.contains(&id.to_string()),
        "{err}"
    );
}
