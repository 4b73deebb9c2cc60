//! A database outage and the reconnect are visible in an engine's log, once each rather than
//! once per poll: run `longrun run` on a private cluster, stop the cluster, start it again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use longrun::store::{pg_config, StoreConfig};
use longrun::Store;
use longrun_cli::cluster::{free_port, Cluster};

fn wait_for(lines: &Mutex<Vec<String>>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if lines.lock().unwrap().iter().any(|l| l.contains(what)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never logged {what:?}: {:#?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_the_reconnect_are_each_logged() {
    let port = free_port().unwrap();
    let cluster = Cluster::create(port, &format!("longrun-outage-{port}")).unwrap();
    cluster.start().unwrap();
    let conn = cluster.conn();
    let store = Store::connect_with(
        pg_config(Some(&conn)).unwrap(),
        StoreConfig {
            schema: "outage".into(),
            pool_size: 1,
            ..StoreConfig::default()
        },
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    drop(store);
    let mut child = Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["--database-url", &conn, "--schema", "outage", "run"])
        .env("RUST_LOG", "warn,longrun=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = lines.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(l);
            }
        })
    };
    wait_for(&lines, "engine");
    cluster.stop("fast").unwrap();
    wait_for(&lines, "failed; it will be tried again");
    cluster.start().unwrap();
    wait_for(&lines, "works again after");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    cluster.destroy();
    assert!(status.success());
    let lines = lines.lock().unwrap();
    // Rate-limited: a few lines for the outage, not one per poll of every worker.
    let failures = lines.iter().filter(|l| l.contains("failed")).count();
    assert!(
        !lines.iter().any(|l| l.contains('\u{1b}')),
        "no colour codes in a pipe: {lines:#?}"
    );
    assert!(failures <= 20, "{failures} failure lines: {lines:#?}");
}
