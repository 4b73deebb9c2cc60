//! Versions side by side, and moving running instances between them.

use serde_json::json;
use uuid::Uuid;

use crate::common::{client, TestDb};
use longrun::machine::MigrationPlan;
use longrun::{Message, ProcessDefinition, StartRequest};

fn v1() -> ProcessDefinition {
    ProcessDefinition::builder("claim")
        .receive("first", "First")
        .receive("second", "Second")
        .end("done")
        .build()
        .unwrap()
}

/// v2 audits after the first message and renames the second wait.
fn v2() -> ProcessDefinition {
    ProcessDefinition::builder("claim")
        .receive("first", "First")
        .send("audit", "Audited")
        .receive("second_v2", "Second")
        .end("done")
        .build()
        .unwrap()
}

async fn event_types(db: &TestDb, id: Uuid) -> Vec<String> {
    db.store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.event_type)
        .collect()
}

#[tokio::test]
async fn old_instances_finish_on_their_version_while_new_ones_start_on_the_latest() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    assert_eq!(engine.deploy(&v1()).await.unwrap().version, 1);
    let old = engine.start(StartRequest::new("claim", "a")).await.unwrap();
    assert_eq!(engine.deploy(&v2()).await.unwrap().version, 2);
    let new = engine.start(StartRequest::new("claim", "b")).await.unwrap();
    let pinned = engine
        .start(StartRequest::new("claim", "c").version(1))
        .await
        .unwrap();
    assert_eq!(db.store.instance(old).await.unwrap().version, 1);
    assert_eq!(db.store.instance(new).await.unwrap().version, 2);
    assert_eq!(db.store.instance(pinned).await.unwrap().version, 1);
    // A tag names a version; moving it changes what new instances get.
    let now = chrono::Utc::now();
    db.store.tag("claim", "stable", 1, now).await.unwrap();
    let tagged = engine
        .start(StartRequest::new("claim", "d").tag("stable"))
        .await
        .unwrap();
    assert_eq!(db.store.instance(tagged).await.unwrap().version, 1);
    db.store.tag("claim", "stable", 2, now).await.unwrap();
    let retagged = engine
        .start(StartRequest::new("claim", "e").tag("stable"))
        .await
        .unwrap();
    assert_eq!(db.store.instance(retagged).await.unwrap().version, 2);
    assert!(engine
        .start(StartRequest::new("claim", "f").tag("nope"))
        .await
        .is_err());
    assert!(db.store.tag("claim", "Bad Tag", 1, now).await.is_err());
    assert!(db.store.tag("claim", "x", 9, now).await.is_err());
    for key in ["a", "b"] {
        for (name, id) in [("First", "f"), ("Second", "s")] {
            engine
                .send(Message::new(name, key, format!("{id}-{key}")))
                .await
                .unwrap();
        }
    }
    assert_eq!(db.store.instance(old).await.unwrap().status, "completed");
    assert_eq!(db.store.instance(new).await.unwrap().status, "completed");
    assert_eq!(
        db.count("outbox", "WHERE name = 'Audited'").await,
        1,
        "only v2 audits"
    );
    let defs = db.store.definitions().await.unwrap();
    let counts: Vec<(i32, i64, i64)> = defs
        .iter()
        .map(|d| (d.version, d.running, d.completed))
        .collect();
    assert_eq!(counts, vec![(1, 2, 1), (2, 1, 1)]);
    assert_eq!(defs[1].tags, "stable");
    // The diff names what changed.
    let d = longrun::definition::diff(&v1(), &v2());
    assert_eq!(d.added, vec!["audit", "second_v2"]);
    assert_eq!(d.removed, vec!["second"]);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].0, "first");
    assert_eq!(d.changed[0].1, vec!["next: \"second\" -> \"audit\""]);
}

#[tokio::test]
async fn a_dry_run_says_who_can_move_and_a_migration_moves_them() {
    let db = TestDb::new().await;
    let engine = client(&db.store);
    engine.deploy(&v1()).await.unwrap();
    let at_first = engine.start(StartRequest::new("claim", "a")).await.unwrap();
    let at_second = engine.start(StartRequest::new("claim", "b")).await.unwrap();
    engine
        .send(Message::new("First", "b", "f-b"))
        .await
        .unwrap();
    let done = engine.start(StartRequest::new("claim", "c")).await.unwrap();
    engine
        .send(Message::new("First", "c", "f-c"))
        .await
        .unwrap();
    engine
        .send(Message::new("Second", "c", "s-c"))
        .await
        .unwrap();
    engine.deploy(&v2()).await.unwrap();
    let now = chrono::Utc::now();
    let migrate = |plan: MigrationPlan, dry_run: bool| {
        let store = db.store.clone();
        async move {
            store
                .migrate_instances("claim", 1, 2, &plan, dry_run, now, "test", |_| {})
                .await
                .unwrap()
        }
    };

    // Dry run: exactly the running instances, each movable or not, with the reason.
    let dry = migrate(MigrationPlan::default(), true).await;
    assert_eq!(dry.moved, vec![at_first]);
    assert_eq!(dry.refused.len(), 1);
    assert_eq!(dry.refused[0].instance_id, at_second);
    assert_eq!(
        dry.refused[0].reason,
        "it waits at step second, which v2 lacks (map it: --map second=STEP)"
    );
    assert!(!dry.moved.contains(&done));
    assert_eq!(
        db.count("events", "WHERE event_type = 'Migrated'").await,
        0,
        "a dry run writes nothing"
    );

    // The movable one moves and completes on v2.
    let report = migrate(MigrationPlan::default(), false).await;
    assert_eq!((report.moved.len(), report.refused.len()), (1, 1));
    assert_eq!(db.store.instance(at_first).await.unwrap().version, 2);
    assert_eq!(db.store.instance(at_second).await.unwrap().version, 1);
    assert!(event_types(&db, at_first)
        .await
        .contains(&"Migrated".to_string()));
    engine
        .send(Message::new("First", "a", "f-a"))
        .await
        .unwrap();
    engine
        .send(Message::new("Second", "a", "s-a"))
        .await
        .unwrap();
    assert_eq!(
        db.store.instance(at_first).await.unwrap().status,
        "completed"
    );
    assert_eq!(
        db.count("outbox", "WHERE name = 'Audited'").await,
        1,
        "ran v2's audit"
    );

    // Again: harmless, nothing left that can move without a mapping.
    let again = migrate(MigrationPlan::default(), false).await;
    assert_eq!((again.moved.len(), again.refused.len()), (0, 1));

    // With a mapping the other moves too: its subscription follows the renamed step.
    let mut plan = MigrationPlan::default();
    plan.mapping.insert("second".into(), "second_v2".into());
    plan.set.insert("migrated".into(), json!(true));
    let mapped = migrate(plan, false).await;
    assert_eq!(mapped.moved, vec![at_second]);
    let view = db.store.instance(at_second).await.unwrap();
    assert_eq!(view.current_step.as_deref(), Some("second_v2"));
    assert_eq!(view.variables["migrated"], json!(true));
    assert_eq!(
        db.count("subscriptions", "WHERE step_id = 'second_v2'")
            .await,
        1
    );
    engine
        .send(Message::new("Second", "b", "s-b"))
        .await
        .unwrap();
    assert_eq!(
        db.store.instance(at_second).await.unwrap().status,
        "completed"
    );
    let migrated = db
        .store
        .history(at_second)
        .await
        .unwrap()
        .into_iter()
        .find(|h| h.event_type == "Migrated")
        .unwrap();
    assert_eq!(migrated.data["steps"], json!({"second": "second_v2"}));
    assert_eq!(migrated.data["from_version"], json!(1));

    // Each stream, Migrated event included, replays to the state stored for it.
    for id in [at_first, at_second, done] {
        let r = db.store.replay(id).await.unwrap();
        assert!(r.differences.is_empty(), "{id}: {:?}", r.differences);
    }

    // A bad plan is refused before anything is looked at.
    let mut bad = MigrationPlan::default();
    bad.mapping.insert("nope".into(), "first".into());
    let e = db
        .store
        .migrate_instances("claim", 1, 2, &bad, false, now, "test", |_| {})
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("the old version has no step \"nope\""),
        "{e}"
    );
    assert!(db
        .store
        .migrate_instances(
            "claim",
            2,
            2,
            &MigrationPlan::default(),
            false,
            now,
            "t",
            |_| {}
        )
        .await
        .is_err());
}
