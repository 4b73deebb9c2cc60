//! The command line, run as a user runs it: exit codes, messages, and what it leaves behind.

use std::process::{Command, Output};

use crate::common::TestDb;

pub(crate) fn longrun(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_longrun"));
    cmd.args(args).env_remove("LONGRUN_SCHEMA");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run longrun")
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn the_bench_refuses_an_existing_schema_and_leaves_it_whole() {
    let db = TestDb::new().await;
    let tables = db
        .scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{name}'"
                .replace("{name}", db.schema())
                .as_str(),
        )
        .await;
    assert!(tables > 5);
    let bench = ["bench", "--instances", "10", "--ceiling-seconds", "0"];
    // Named with --schema, and through LONGRUN_SCHEMA: refused either way, exit 2.
    let mut with_flag = vec!["--schema", db.schema()];
    with_flag.extend(bench);
    for out in [
        longrun(&with_flag, &[]),
        longrun(&bench, &[("LONGRUN_SCHEMA", db.schema())]),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    let after = db
        .scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = '{name}'"
                .replace("{name}", db.schema())
                .as_str(),
        )
        .await;
    assert_eq!(after, tables, "the user's schema lost tables");
    assert!(db.count("schema_migrations", "").await > 0);
}

#[tokio::test]
async fn the_bench_creates_and_drops_a_schema_of_its_own() {
    let out = longrun(
        &[
            "bench",
            "--instances",
            "20",
            "--engines",
            "1",
            "--ceiling-seconds",
            "0",
        ],
        &[],
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let schema = err
        .lines()
        .find_map(|l| l.strip_prefix("bench: schema "))
        .and_then(|l| l.split(',').next())
        .expect("the bench names its schema")
        .to_string();
    assert!(schema.starts_with("bench_"), "{schema}");
    let db = TestDb::empty().await;
    let left = db
        .scalar(&format!(
            "SELECT count(*) FROM pg_namespace WHERE nspname = '{schema}'"
        ))
        .await;
    assert_eq!(left, 0, "the bench left its schema {schema} behind");
}

#[tokio::test]
async fn a_time_to_live_beyond_what_dates_hold_is_refused_not_a_panic() {
    let db = TestDb::new().await;
    for ttl in ["9223372036854775", "3153600001", "0", "-5"] {
        let ttl = format!("--ttl-seconds={ttl}");
        let out = longrun(
            &[
                "--schema",
                db.schema(),
                "send",
                "Ping",
                "--key",
                "k",
                "--id",
                "m1",
                &ttl,
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{ttl}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("--ttl-seconds must be from 1"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(db.count("inbox", "").await, 0);
}

#[tokio::test]
async fn output_into_a_closed_pipe_ends_quietly() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    for i in 0..300 {
        engine
            .start(
                longrun::StartRequest::new("p", format!("key-{i}"))
                    .variables(serde_json::json!({ "k": format!("k{i}") })),
            )
            .await
            .unwrap();
    }
    // The reader goes away before longrun writes: what `longrun instances | head -0` does.
    let mut child = Command::new(env!("CARGO_BIN_EXE_longrun"))
        .args(["--schema", db.schema(), "instances", "--limit", "300"])
        .env_remove("LONGRUN_SCHEMA")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "{:?}",
        out.status
    );
}

#[tokio::test]
async fn an_engine_run_from_the_command_line_logs_in_the_format_asked() {
    use std::io::{BufRead, BufReader};
    let db = TestDb::new().await;
    for format in ["json", "text"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_longrun"))
            .args(["--schema", db.schema(), "--log-format", format, "run"])
            .env_remove("LONGRUN_SCHEMA")
            .env("RUST_LOG", "longrun=debug")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        // The tests connect as a superuser: the engine's warning about it must be visible.
        let line = tokio::task::spawn_blocking(move || {
            BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .find(|l| l.contains("SUPERUSER"))
        });
        let line = tokio::time::timeout(std::time::Duration::from_secs(60), line)
            .await
            .expect("no SUPERUSER warning logged")
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let line = line.expect("the log ended without the warning");
        if format == "json" {
            let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
            assert_eq!(v["level"], "WARN", "{line}");
        } else {
            assert!(line.contains("WARN"), "{line}");
        }
    }
}

#[tokio::test]
async fn sending_a_message_no_process_knows_warns_on_stderr() {
    let db = TestDb::new().await;
    for json in [false, true] {
        let id = format!("m-{json}");
        let mut args = vec![
            "--schema",
            db.schema(),
            "send",
            "Nobody",
            "--key",
            "k",
            "--id",
            &id,
        ];
        if json {
            args.push("--json");
        }
        let out = longrun(&args, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("warning: message Nobody was dead-lettered"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(db.count("inbox", "WHERE status = 'dead'").await, 2);
}

#[test]
fn deploy_reads_no_further_than_the_size_limit() {
    // An endless input: refused after 4 MiB, not read into memory for ever.
    let out = longrun(&["deploy", "/dev/zero", "--format", "bpmn"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
    let dir = std::env::temp_dir().join(format!("longrun-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("big.bpmn");
    std::fs::write(&big, vec![b' '; 5 << 20]).unwrap();
    let out = longrun(&["deploy", big.to_str().unwrap()], &[]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("larger than"), "{}", stderr(&out));
}

#[tokio::test]
async fn instances_are_found_by_business_key_and_times_are_rfc_3339() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    for key in ["o-1", "o-1", "o-2"] {
        engine
            .start(longrun::StartRequest::new("p", key).variables(serde_json::json!({"k": key})))
            .await
            .unwrap();
    }
    let s = db.schema();
    let out = longrun(&["--schema", s, "--json", "instances", "--key", "o-2"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["business_key"], "o-2");
    let out = longrun(&["--schema", s, "show", "o-2"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // started   2026-12-02T20:10:00.123Z
    let started = text.lines().find(|l| l.starts_with("started")).unwrap();
    let when = started.split_whitespace().nth(1).unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(when).is_ok() && when.ends_with('Z'),
        "{started}"
    );
    let out = longrun(&["--schema", s, "explain", "o-2"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Two instances have o-1: the command says which, and asks for an id.
    let out = longrun(&["--schema", s, "show", "o-1"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("2 instances have business key"),
        "{}",
        stderr(&out)
    );
    // Errors with --json are one JSON object on stderr.
    let out = longrun(&["--schema", s, "--json", "show", "nobody"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["kind"], "input");
    assert!(
        err["error"].as_str().unwrap().contains("no instance has"),
        "{err}"
    );
}

/// `longrun storage`: rows and bytes per table, and what each ended instance leaves behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_prints_rows_and_bytes_per_table_and_per_ended_instance() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    let def = crate::common::waits_for_go();
    engine.deploy(&def).await.unwrap();
    for i in 0..3 {
        engine
            .start(
                longrun::StartRequest::new(def.process.as_str(), format!("k{i}"))
                    .variables(serde_json::json!({ "k": format!("k{i}") })),
            )
            .await
            .unwrap();
    }
    let out = longrun(
        &["--schema", db.schema(), "--json", "storage", "--exact"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "events")
        .expect("events is listed");
    assert_eq!(events["rows"], db.count("events", "").await);
    assert!(events["total_bytes"].as_i64().unwrap() > 0);
    assert_eq!(v["running_instances"], 3);
    assert_eq!(v["ended_instances"], 0);
    assert!(v["bytes_per_ended_instance"].is_null());

    // Once they ended, the bytes are shared out over them.
    for i in 0..3 {
        engine
            .send(longrun::Message::new(
                "Go",
                format!("k{i}"),
                format!("go-{i}"),
            ))
            .await
            .unwrap();
    }
    let out = longrun(&["--schema", db.schema(), "storage"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 ended and 0 running instances"), "{text}");
    assert!(text.contains("bytes per ended instance"), "{text}");
}

/// `longrun engines`: the running engines and their share of the buckets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_lists_the_running_engines_and_their_buckets() {
    let db = TestDb::new().await;
    let out = longrun(&["--schema", db.schema(), "engines"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no engine runs"));
    let engine = longrun::Engine::builder(db.store.clone())
        .config(longrun::EngineConfig {
            owner: "cli-engine".into(),
            ..Default::default()
        })
        .handler("work", |_job: longrun::JobContext| async move {
            Ok(serde_json::json!({}))
        })
        .build()
        .unwrap();
    let running = engine.run();
    crate::common::eventually("the engine takes its buckets", || {
        let n = running.buckets().len();
        async move { n == 256 }
    })
    .await;
    let out = longrun(&["--schema", db.schema(), "--json", "engines"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["owner"], "cli-engine");
    assert_eq!(v[0]["handlers"], "work");
    assert_eq!(v[0]["live"], true);
    assert_eq!(v[0]["buckets"], 256);
    running.shutdown().await;
    let out = longrun(&["--schema", db.schema(), "engines"], &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("no engine runs"));
}

/// `longrun retention`: a dry run counts what would go, a run removes it and says so per table;
/// the running instance stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_ended_history_and_says_what_went() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    let def = crate::common::waits_for_go();
    engine.deploy(&def).await.unwrap();
    for i in 0..4 {
        engine
            .start(
                longrun::StartRequest::new(def.process.as_str(), format!("k{i}"))
                    .variables(serde_json::json!({ "k": format!("k{i}") })),
            )
            .await
            .unwrap();
    }
    for i in 0..3 {
        engine
            .send(longrun::Message::new(
                "Go",
                format!("k{i}"),
                format!("go-{i}"),
            ))
            .await
            .unwrap();
    }
    let events = db.count("events", "").await;
    let running_events = db
        .count(
            "events",
            "WHERE instance_id IN (SELECT instance_id FROM {s}.instances WHERE status = 'running')"
                .replace("{s}", &format!("\"{}\"", db.schema()))
                .as_str(),
        )
        .await;
    let s = db.schema();
    let out = longrun(
        &[
            "--schema",
            s,
            "--json",
            "retention",
            "--dry-run",
            "--older-than",
            "PT0.001S",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["removed"]["instances"], 3);
    assert_eq!(v["removed"]["events"], events - running_events);
    assert_eq!(
        db.count("instances", "").await,
        4,
        "a dry run removes nothing"
    );

    let out = longrun(
        &["--schema", s, "retention", "--older-than", "PT0.001S"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["instances", "3"])),
        "{text}"
    );
    assert_eq!(db.count("instances", "").await, 1);
    assert_eq!(db.count("events", "").await, running_events);

    let out = longrun(&["--schema", s, "retention", "--older-than", "soon"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--older-than"), "{}", stderr(&out));
}

/// `longrun projections` says which transaction holds delivery and the projections back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_name_the_transaction_that_holds_them_back() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    let def = crate::common::waits_for_go();
    engine.deploy(&def).await.unwrap();
    let mut c = db.sql().await;
    c.batch_execute("SET application_name = 'holding_test'")
        .await
        .unwrap();
    let tx = c.transaction().await.unwrap();
    engine
        .start_tx(
            &tx,
            longrun::StartRequest::new("p", "k").variables(serde_json::json!({"k": "k"})),
        )
        .await
        .unwrap();
    let out = longrun(&["--schema", db.schema(), "projections"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("held back by pid"), "{text}");
    assert!(text.contains("holding_test"), "{text}");
    tx.commit().await.unwrap();
    let out = longrun(&["--schema", db.schema(), "projections"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("held back"), "{text}");
}

#[tokio::test]
async fn a_clerk_lists_claims_and_completes_a_task_from_the_command_line() {
    use longrun::definition::UserTask;
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    let def = longrun::ProcessDefinition::builder("review")
        .user_task(
            "review",
            UserTask::new()
                .candidate_groups(["sales"])
                .due("P1D")
                .field("approved", longrun::expr::Type::Boolean),
        )
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(longrun::StartRequest::new("review", "order-9"))
        .await
        .unwrap();
    let s = db.schema();
    let out = longrun(&["--schema", s, "tasks", "--group", "sales"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("order-9") && text.contains("sales"), "{text}");
    let out = longrun(&["--schema", s, "--json", "tasks", "--group", "sales"], &[]);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = page["tasks"][0]["task_id"].as_str().unwrap().to_string();

    let out = longrun(
        &["--schema", s, "task", "claim", &task, "--user", "ann"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // Someone else's claim is refused, exit 2, with who holds it.
    let out = longrun(
        &["--schema", s, "task", "claim", &task, "--user", "bob"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("held by ann"), "{}", stderr(&out));
    let out = longrun(&["--schema", s, "task", "show", &task], &[]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("approved (boolean)"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Variables that do not match the fields are refused and nothing changes.
    let out = longrun(
        &[
            "--schema",
            s,
            "task",
            "complete",
            &task,
            "--user",
            "ann",
            "--vars",
            r#"{"approved": "yes"}"#,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("must be a boolean"),
        "{}",
        stderr(&out)
    );
    let out = longrun(
        &[
            "--schema",
            s,
            "task",
            "complete",
            &task,
            "--user",
            "ann",
            "--vars",
            r#"{"approved": true}"#,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(db.store.instance(id).await.unwrap().status, "completed");
    let out = longrun(&["--schema", s, "task", "show", &task], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not open"), "{}", stderr(&out));
}

#[tokio::test]
async fn a_signal_from_the_command_line_reaches_the_waiting_instances() {
    let db = TestDb::new().await;
    let engine = crate::common::client(&db.store);
    let def = longrun::ProcessDefinition::builder("waits")
        .wait_signal("wait", "Open")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let ids = engine
        .start_many(
            (0..3)
                .map(|i| longrun::StartRequest::new("waits", format!("w{i}")))
                .collect(),
        )
        .await
        .unwrap();
    let s = db.schema();
    let out = longrun(
        &[
            "--schema",
            s,
            "signal",
            "Open",
            "--payload",
            r#"{"door": 2}"#,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("reached 3 instances"), "{text}");
    for id in ids {
        let v = db.store.instance(id).await.unwrap();
        assert_eq!(
            (v.status.as_str(), &v.variables["door"]),
            ("completed", &serde_json::json!(2))
        );
    }
    let out = longrun(&["--schema", s, "--json", "signals"], &[]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["delivered"], 3);
    let out = longrun(&["--schema", s, "signal", "Open", "--payload", "[1]"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn convert_turns_bpmn_into_json_and_back_without_a_database_and_reports_problems() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/bpmn");
    let dir = std::env::temp_dir().join(format!("longrun-convert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // No database: a URL nobody listens on.
    let env = [("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")];
    let bpmn = format!("{fixtures}/signal_catch_modeler.bpmn");
    let out = longrun(&["convert", &bpmn], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let json = String::from_utf8(out.stdout).unwrap();
    let def = longrun::ProcessDefinition::from_json(&json).unwrap();
    assert_eq!(def.process, "pick_order");
    let json_file = dir.join("pick_order.json");
    std::fs::write(&json_file, &json).unwrap();
    let out = longrun(&["convert", json_file.to_str().unwrap()], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(xml.contains("<bpmn:signalEventDefinition"), "{xml}");
    assert_eq!(longrun::bpmn::import(&xml).unwrap(), def);
    // A file outside the subset: exit 2, the file, line and column, nothing printed.
    let refused = format!("{fixtures}/refused/script_task.bpmn");
    let out = longrun(&["convert", &refused], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains("script_task.bpmn:119:5: scriptTask"),
        "{}",
        stderr(&out)
    );
    let out = longrun(&["convert", &bpmn, "--to", "yaml"], &env);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
