//! Timeouts: a database that never answers and a row lock held elsewhere are clear errors
//! within the configured time, never a silent hang.

use std::process::Command;

use longrun::store::{pg_config, StoreConfig};
use longrun::{StartRequest, Store};

use crate::common::{client, TestDb};

/// A TCP port that accepts connections and never says a word (a frozen server).
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        // Two connections: the library's and the command line's.
        for _ in 0..2 {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    (port, handle)
}

#[tokio::test]
async fn a_database_that_never_answers_is_an_error_within_the_connect_timeout() {
    let (port, _server) = silent_server();
    let url = format!("postgres://nobody@127.0.0.1:{port}/db?sslmode=disable");
    let e = Store::connect_with(
        pg_config(Some(&url)).unwrap(),
        StoreConfig {
            connect_timeout: std::time::Duration::from_millis(300),
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("did not answer within the connect timeout"),
        "{e}"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args([
            "--database-url",
            &url,
            "--connect-timeout",
            "0.3",
            "definitions",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not answer within the connect timeout"),
        "{err}"
    );
}

#[tokio::test]
async fn a_row_lock_held_elsewhere_is_an_error_within_the_lock_timeout() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    let id = engine
        .start(StartRequest::new("p", "b-1").variables(serde_json::json!({ "k": "k1" })))
        .await
        .unwrap();
    // Someone holds the instance's row (a DBA's open transaction, say).
    let mut dba = db.sql().await;
    let tx = dba.transaction().await.unwrap();
    tx.execute(
        &format!(
            "SELECT 1 FROM \"{}\".instances WHERE instance_id = $1 FOR UPDATE",
            db.schema()
        ),
        &[&id],
    )
    .await
    .unwrap();
    let cancel = |timeout: &str| {
        Command::new(env!("CARGO_BIN_EXE_longrun"))
            .args(["--schema", db.schema(), "--lock-timeout", timeout, "cancel"])
            .arg(id.to_string())
            .env_remove("LONGRUN_SCHEMA")
            .output()
            .unwrap()
    };
    let out = cancel("0.3");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lock timeout"), "{err}");
    tx.rollback().await.unwrap();
    // Nothing was half done: the instance still runs, and cancelling now works.
    assert_eq!(
        db.count(
            "instances",
            &format!("WHERE instance_id = '{id}' AND status = 'running'")
        )
        .await,
        1
    );
    let out = cancel("10");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
