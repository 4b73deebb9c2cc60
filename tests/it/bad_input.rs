//! The bad-input corpus (tests/corpus): every input is refused with a typed error, and nothing
//! is written.

use serde_json::{json, Value};

use crate::common::{client, TestDb};
use longrun::definition::Error as DefinitionError;
use longrun::expr::Expr;
use longrun::{Error, Message, ProcessDefinition, StartRequest};

const TABLES: &[&str] = &[
    "definitions",
    "instances",
    "events",
    "jobs",
    "outbox",
    "inbox",
    "subscriptions",
    "timers",
];

async fn counts(db: &TestDb) -> Vec<i64> {
    let mut out = Vec::new();
    for t in TABLES {
        out.push(db.count(t, "").await);
    }
    out
}

fn corpus(dir: &str) -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn every_definition_in_the_corpus_is_refused_with_a_typed_error() {
    let files = corpus("definitions");
    assert!(files.len() >= 15);
    for (name, text) in files {
        match ProcessDefinition::from_json(&text) {
            Err(DefinitionError::Parse { line, column, .. }) => {
                assert!(line >= 1, "{name}: line {line} column {column}")
            }
            Err(DefinitionError::Invalid(problems)) => {
                assert!(!problems.is_empty(), "{name}");
                assert!(
                    problems.iter().all(|p| !p.path.is_empty()),
                    "{name}: {problems:?}"
                );
            }
            Err(other) => panic!("{name}: unexpected error {other}"),
            Ok(_) => panic!("{name} was accepted"),
        }
    }
    // Over the document size limit, without reading it as JSON.
    let huge = format!(
        "{{\"process\": \"p\", \"pad\": \"{}\"}}",
        "x".repeat(5 << 20)
    );
    assert!(matches!(
        ProcessDefinition::from_json(&huge),
        Err(DefinitionError::Parse { .. })
    ));
}

#[test]
fn every_expression_in_the_corpus_is_refused_with_its_column() {
    let text = include_str!("../corpus/expressions.txt");
    let mut n = 0;
    for line in text.lines() {
        n += 1;
        let e = Expr::parse(line)
            .and_then(|e| e.check(&Default::default()))
            .expect_err(line);
        assert!(
            e.column >= 1 && e.column <= line.chars().count() + 2,
            "{line}: column {}",
            e.column
        );
    }
    assert!(n >= 20);
}

fn envelope(v: &Value) -> Message {
    let expand = |s: &str| match s {
        "__2MiB__" => "x".repeat(2 << 20),
        "__10KiB__" => "y".repeat(10 << 10),
        other => other.to_string(),
    };
    let mut payload = v["payload"].clone();
    if let Some(blob) = payload.get("blob").and_then(Value::as_str) {
        payload["blob"] = json!(expand(blob));
    }
    let mut m = Message::new(
        v["name"].as_str().unwrap(),
        v["key"].as_str().unwrap(),
        expand(v["id"].as_str().unwrap()),
    )
    .payload(payload);
    if let Some(ttl) = v["ttl_s"].as_i64() {
        m = m.ttl(chrono::Duration::seconds(ttl));
    }
    m
}

#[tokio::test]
async fn every_message_in_the_corpus_is_refused_and_writes_nothing() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let def = ProcessDefinition::builder("pay")
        .receive("wait", "PaymentReceived")
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    engine.start(StartRequest::new("pay", "k")).await.unwrap();
    let before = counts(&db).await;
    let files = corpus("messages");
    assert!(files.len() >= 10);
    let mut all = Vec::new();
    for (name, text) in &files {
        let m = envelope(&serde_json::from_str(text).unwrap());
        all.push(m.clone());
        match engine.send(m).await {
            Err(Error::BadInput(why)) => assert!(!why.is_empty(), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Refused in a batch too, each with its own error, and the good one among them delivered.
    let mut batch = all.clone();
    batch.push(Message::new("PaymentReceived", "k", "good"));
    let out = engine.send_many(batch).await.unwrap();
    assert!(out[..all.len()]
        .iter()
        .all(|r| matches!(r, Err(Error::BadInput(_)))));
    assert!(out[all.len()].is_ok());
    let mut after = counts(&db).await;
    // The good message: one inbox row, its correlation's events, the subscription closed.
    assert_eq!(db.count("inbox", "WHERE message_id = 'good'").await, 1);
    after[5] -= 1;
    assert_eq!(
        before[..2],
        after[..2],
        "definitions and instances unchanged"
    );
    assert_eq!(before[5], after[5], "no refused message reached the inbox");

    // Starts and retries with oversized or NUL-laden variables are refused up front.
    let before = counts(&db).await;
    for vars in [json!({"blob": "x".repeat(2 << 20)}), json!({"a": "b\u{0}"})] {
        let e = engine
            .start(StartRequest::new("pay", "k2").variables(vars))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::BadInput(_)), "{e}");
    }
    assert_eq!(counts(&db).await, before);
}

#[tokio::test]
async fn a_duration_whose_parts_sum_past_100_years_is_refused_at_deploy() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let refused = |duration: String| {
        let text = json!({
            "process": "too_late",
            "steps": [
                {"id": "wait", "type": "timer", "duration": duration},
                {"id": "done", "type": "end"}
            ]
        })
        .to_string();
        let engine = engine.clone();
        async move {
            match ProcessDefinition::from_json(&text) {
                Err(e) => e.to_string(),
                Ok(def) => engine.deploy(&def).await.unwrap_err().to_string(),
            }
        }
    };
    // 5,000 weeks and 36,500 days: each part is under 100 years, the sum is not.
    let e = refused("P5000W36500D".to_string()).await;
    assert!(e.contains("longer than 100 years"), "{e}");
    // 2,700 parts of 36,500 days: refused (parts repeat), with a short error.
    let e = refused(format!("P{}", "36500D".repeat(2700))).await;
    assert!(e.contains("invalid ISO 8601 duration"), "{e}");
    assert!(
        e.len() < 500,
        "the error repeats the whole input: {} bytes",
        e.len()
    );
    assert_eq!(counts(&db).await, vec![0; TABLES.len()]);
}

#[tokio::test]
async fn business_keys_are_checked_like_message_keys() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    let before = counts(&db).await;
    for bad in ["a\0b".to_string(), "line\nbreak".into(), "x".repeat(1001)] {
        match engine.start(StartRequest::new("p", bad.clone())).await {
            Err(Error::BadInput(m)) => assert!(m.contains("business key"), "{m}"),
            other => panic!("{bad:?}: expected BadInput, got {other:?}"),
        }
    }
    assert_eq!(counts(&db).await, before);
    engine
        .start(StartRequest::new("p", "ü-order 42".to_string()).variables(json!({"k": "x"})))
        .await
        .unwrap();
}

#[tokio::test]
async fn integers_beyond_two_to_the_53_are_refused_not_rounded() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&crate::common::waits_for_go()).await.unwrap();
    let before = counts(&db).await;
    let too_big: Value = serde_json::from_str(r#"{"k": "a", "id": 9007199254740993}"#).unwrap();
    let longer: Value =
        serde_json::from_str(r#"{"k": "a", "ids": [1, 123456789012345678901234]}"#).unwrap();
    let negative: Value =
        serde_json::from_str(r#"{"k": "a", "n": {"m": -9007199254740993}}"#).unwrap();
    for vars in [too_big, longer, negative] {
        let e = engine
            .start(StartRequest::new("p", "b").variables(vars.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(e, Error::BadInput(_)) && e.to_string().contains("2^53"),
            "{vars}: {e}"
        );
        let e = engine
            .send(Message::new("Go", "a", "m-1").payload(vars.clone()))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("2^53"), "{vars}: {e}");
    }
    assert_eq!(counts(&db).await, before, "nothing written");
    // 2^53 itself, floats and big numbers written as strings are fine.
    let fine =
        json!({"k": "a", "n": 9007199254740992u64, "f": 1.5, "s": "123456789012345678901234"});
    engine
        .start(StartRequest::new("p", "b").variables(fine))
        .await
        .unwrap();
}

#[test]
fn a_bpmn_document_over_the_size_limit_is_refused_before_parsing() {
    let huge = format!(
        "<bpmn:definitions>{}</bpmn:definitions>",
        " ".repeat(longrun::definition::MAX_DOCUMENT_BYTES)
    );
    let e = longrun::bpmn::import(&huge).unwrap_err();
    assert!(e.to_string().contains("at most"), "{e}");
}
