//! `longrun dev`: a throwaway cluster, migrated, with an engine and the console; removed on
//! SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use longrun::store::pg_config;

fn collect(stream: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    lines
}

fn find(lines: &Mutex<Vec<String>>, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(l) = lines
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.find(prefix).map(|i| l[i + prefix.len()..].to_string()))
        {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "never printed {prefix:?}: {:#?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_a_throwaway_cluster_with_an_engine_and_the_console() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["--schema", "devtest", "dev", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let url = find(&out, "DATABASE_URL=");
    let dir = find(&err, "PostgreSQL in ");
    let dir = dir.split(" on port").next().unwrap().to_string();
    let console = find(&err, "console at http://");
    let addr = console.split('/').next().unwrap().to_string();

    // The schema is migrated, and an engine runs on it.
    let (c, conn) = pg_config(Some(&url)).unwrap().connect().await.unwrap();
    tokio::spawn(conn);
    let n: i64 = c
        .query_one("SELECT count(*) FROM devtest.schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert!(n >= 12);
    drop(c);
    // The console answers.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET /api/processes HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{:#?}", err.lock().unwrap());
    find(&err, "removed the cluster");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is still there");
}
