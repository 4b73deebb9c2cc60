use serde_json::json;

use crate::common::{client, wait_ended, TestDb};
use longrun::definition::{Step, StepKind};
use longrun::{Error, Message, ProcessDefinition, StartRequest};

fn waiter(message: &str) -> ProcessDefinition {
    ProcessDefinition::builder("waiter")
        .receive("wait", message)
        .end("done")
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_same_document_keeps_its_version_and_a_changed_one_gets_the_next() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let v1 = engine.deploy(&waiter("Go")).await.unwrap();
    assert_eq!((v1.version, v1.created), (1, true));
    let again = engine.deploy(&waiter("Go")).await.unwrap();
    assert_eq!((again.version, again.created), (1, false));

    let running = engine
        .start(StartRequest::new("waiter", "k1"))
        .await
        .unwrap();
    let v2 = engine.deploy(&waiter("Proceed")).await.unwrap();
    assert_eq!((v2.version, v2.created), (2, true));
    let newer = engine
        .start(StartRequest::new("waiter", "k2"))
        .await
        .unwrap();

    // The running instance keeps version 1 and the message it waits for.
    let mut ended = engine.subscribe_ended();
    engine.send(Message::new("Go", "k1", "m1")).await.unwrap();
    engine
        .send(Message::new("Proceed", "k2", "m2"))
        .await
        .unwrap();
    wait_ended(&mut ended, &[running, newer]).await;
    assert_eq!(db.store.instance(running).await.unwrap().version, 1);
    assert_eq!(db.store.instance(newer).await.unwrap().version, 2);
}

#[tokio::test]
async fn an_invalid_definition_writes_nothing() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    let mut def = waiter("Go");
    def.steps[0].next = Some("shipp_goods".into());
    match engine.deploy(&def).await {
        Err(Error::Definition(e)) => {
            assert_eq!(
                e.to_string(),
                r#"steps[0].next: unknown step "shipp_goods""#
            )
        }
        other => panic!("expected a definition error, got {other:?}"),
    }
    def.steps.push(Step {
        id: "wait".into(),
        kind: StepKind::End,
        next: None,
        boundary: Vec::new(),
        compensate: None,
        inputs: Vec::new(),
        outputs: Vec::new(),
        within: None,
        multi: None,
        milestone: None,
    });
    assert!(engine.deploy(&def).await.is_err());
    assert_eq!(db.count("definitions", "").await, 0);
}

#[tokio::test]
async fn starting_an_unknown_process_or_with_bad_variables_writes_nothing() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    assert!(matches!(
        engine.start(StartRequest::new("nope", "k")).await,
        Err(Error::ProcessNotFound(_))
    ));
    engine.deploy(&waiter("Go")).await.unwrap();
    assert!(matches!(
        engine
            .start(StartRequest::new("waiter", "k").variables(json!([1, 2])))
            .await,
        Err(Error::BadInput(_))
    ));
    // One bad request in a batch: none of the batch starts.
    let batch = vec![
        StartRequest::new("waiter", "a"),
        StartRequest::new("waiter", "b").version(9),
    ];
    assert!(engine.start_many(batch).await.is_err());
    assert_eq!(db.count("instances", "").await, 0);
    assert_eq!(db.count("events", "").await, 0);
}
