//! User tasks: the task list, each action and each refusal, escalation, and that a task never
//! outlives its step or its instance.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::common::TestDb;
use longrun::definition::{Reassign, TimerSpec, UserTask};
use longrun::expr::Type;
use longrun::machine::{MigrationPlan, TaskAction};
use longrun::store::{Task, TaskQuery};
use longrun::{Clock, Engine, Error, ManualClock, Message, ProcessDefinition, StartRequest};

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap())
}

fn engine_on(db: &TestDb, clock: &ManualClock) -> Engine {
    Engine::builder(db.store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// A review for group `sales`, due in two days, that must say whether it is approved; an
/// interrupting timer after 30 days gives up, and the message `Withdrawn` ends it too.
fn review() -> ProcessDefinition {
    ProcessDefinition::builder("review")
        .user_task(
            "review",
            UserTask::new()
                .candidate_groups(["sales", "=region"])
                .due("P2D")
                .priority(70)
                .form("forms/review")
                .field("approved", Type::Boolean)
                .field("note", Type::String),
        )
        .timeout_after("P30D", "gave_up")
        .or_message("Withdrawn", "withdrawn")
        .end("done")
        .end("gave_up")
        .end("withdrawn")
        .build()
        .unwrap()
}

async fn group(engine: &Engine, groups: &[&str]) -> Vec<Task> {
    engine
        .tasks(&TaskQuery {
            candidate_groups: groups.iter().map(|g| g.to_string()).collect(),
            ..TaskQuery::default()
        })
        .await
        .unwrap()
        .tasks
}

async fn start(engine: &Engine, key: &str) -> (Uuid, Task) {
    let id = engine
        .start(StartRequest::new("review", key).variables(json!({"region": "north"})))
        .await
        .unwrap();
    let all = engine.tasks(&TaskQuery::default()).await.unwrap().tasks;
    let task = all
        .into_iter()
        .find(|t| t.instance_id == id)
        .expect("a task");
    (id, task)
}

async fn status(db: &TestDb, id: Uuid) -> String {
    db.store.instance(id).await.unwrap().status
}

#[tokio::test]
async fn a_task_is_offered_claimed_and_completed_and_the_instance_goes_on() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    let (id, task) = start(&engine, "order-1").await;
    assert_eq!(task.step, "review");
    assert_eq!(task.candidate_groups, ["sales", "north"]);
    assert_eq!(task.priority, 70);
    assert_eq!(task.form.as_deref(), Some("forms/review"));
    assert_eq!(task.due_at, Some(clock.now() + Duration::days(2)));
    assert_eq!(task.assignee, None);
    // Offered to either group; not to others.
    assert_eq!(group(&engine, &["north"]).await.len(), 1);
    assert_eq!(group(&engine, &["sales", "north"]).await.len(), 1, "once");
    assert!(group(&engine, &["support"]).await.is_empty());
    // The task page: the fields the completion must supply, the instance's variables.
    let detail = engine.task(task.task_id).await.unwrap().unwrap();
    assert_eq!(detail.fields.len(), 2);
    assert_eq!(detail.variables["region"], "north");

    engine.claim(task.task_id, "alice").await.unwrap();
    engine.claim(task.task_id, "alice").await.unwrap(); // again: nothing changes
    match engine.claim(task.task_id, "bob").await {
        Err(Error::TaskHeld { assignee, .. }) => assert_eq!(assignee, "alice"),
        other => panic!("bob's claim: {other:?}"),
    }
    match engine
        .complete(task.task_id, "bob", json!({"approved": true, "note": ""}))
        .await
    {
        Err(Error::TaskHeld { .. }) => {}
        other => panic!("bob's completion: {other:?}"),
    }
    for (vars, says) in [
        (json!({"approved": "yes", "note": ""}), "must be a boolean"),
        (json!({"approved": true}), "\"note\" (string) is missing"),
        (
            json!({"approved": true, "note": "", "total": 0}),
            "is not a field",
        ),
        (json!([1]), "JSON object"),
    ] {
        match engine.complete(task.task_id, "alice", vars).await {
            Err(Error::BadInput(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("a bad completion: {other:?}"),
        }
    }
    assert_eq!(status(&db, id).await, "running", "nothing was written");
    let mine = engine
        .tasks(&TaskQuery {
            assignee: Some("alice".into()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(mine.tasks.len(), 1);

    engine
        .complete(
            task.task_id,
            "alice",
            json!({"approved": true, "note": "ok"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&db, id).await, "completed");
    let view = db.store.instance(id).await.unwrap();
    assert_eq!(view.variables["approved"], true);
    assert_eq!(db.count("tasks", "").await, 0);
    assert_eq!(db.count("task_candidates", "").await, 0);
    assert!(matches!(
        engine.claim(task.task_id, "alice").await,
        Err(Error::TaskNotOpen(_))
    ));
    // The history says who did what.
    let history = db.store.history(id).await.unwrap();
    let by: Vec<(String, String)> = history
        .iter()
        .filter(|h| h.event_type.starts_with("Task"))
        .map(|h| {
            (
                h.event_type.clone(),
                h.data["by"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("TaskCreated".to_string(), String::new()),
            ("TaskClaimed".into(), "alice".into()),
            ("TaskCompleted".into(), "alice".into()),
        ]
    );
}

#[tokio::test]
async fn of_two_concurrent_completions_one_wins_and_the_other_is_told() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    for round in 0..5 {
        let (id, task) = start(&engine, &format!("race-{round}")).await;
        let vars = || json!({"approved": true, "note": "x"});
        let (a, b) = tokio::join!(
            engine.complete(task.task_id, "alice", vars()),
            engine.complete(task.task_id, "bob", vars())
        );
        let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{a:?} {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(matches!(loser, Err(Error::TaskNotOpen(_))), "{loser:?}");
        assert_eq!(status(&db, id).await, "completed");
        let completed = db
            .count(
                "events",
                &format!("WHERE instance_id = '{id}' AND event_type = 'TaskCompleted'"),
            )
            .await;
        assert_eq!(completed, 1);
    }
}

#[tokio::test]
async fn operators_force_delegate_release_and_reschedule() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    let (_, task) = start(&engine, "order-2").await;
    let t = task.task_id;
    engine.claim(t, "alice").await.unwrap();
    // A forced claim takes it, and the history names who had it.
    engine
        .act_on_task(t, TaskAction::Claim { force: true }, "supervisor")
        .await
        .unwrap();
    assert_eq!(
        engine
            .task(t)
            .await
            .unwrap()
            .unwrap()
            .task
            .assignee
            .as_deref(),
        Some("supervisor")
    );
    // Delegation by the holder; then the delegate releases it.
    engine.assign(t, Some("carol"), "supervisor").await.unwrap();
    assert!(matches!(
        engine.unclaim(t, "alice").await,
        Err(Error::TaskHeld { .. })
    ));
    engine.unclaim(t, "carol").await.unwrap();
    let now = engine.task(t).await.unwrap().unwrap().task;
    assert_eq!(now.assignee, None);
    // New dates and priority; a bad priority is refused.
    let due = clock.now() + Duration::hours(5);
    engine
        .act_on_task(
            t,
            TaskAction::Update {
                due_at: Some(Some(due)),
                follow_up_at: Some(Some(due - Duration::hours(1))),
                priority: Some(90),
            },
            "supervisor",
        )
        .await
        .unwrap();
    let now = engine.task(t).await.unwrap().unwrap().task;
    assert_eq!((now.due_at, now.priority), (Some(due), 90));
    assert!(matches!(
        engine
            .act_on_task(
                t,
                TaskAction::Update {
                    due_at: None,
                    follow_up_at: None,
                    priority: Some(101)
                },
                "x"
            )
            .await,
        Err(Error::BadInput(_))
    ));
    assert!(matches!(engine.claim(t, "").await, Err(Error::BadInput(_))));
    // Reassigning the groups moves it between the group lists.
    engine
        .act_on_task(
            t,
            TaskAction::Assign {
                assignee: None,
                candidate_users: Some(vec!["dave".into()]),
                candidate_groups: Some(vec!["support".into()]),
                force: false,
            },
            "supervisor",
        )
        .await
        .unwrap();
    assert!(group(&engine, &["sales"]).await.is_empty());
    assert_eq!(group(&engine, &["support"]).await.len(), 1);
    let dave = engine
        .tasks(&TaskQuery {
            candidate_user: Some("dave".into()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(dave.tasks.len(), 1);
}

#[tokio::test]
async fn a_task_never_outlives_its_step_or_its_instance() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    // Cancelled with its instance.
    let (cancelled, _) = start(&engine, "cancel-me").await;
    engine.cancel(cancelled, "customer left").await.unwrap();
    // Interrupted by a boundary message.
    let (withdrawn, _) = start(&engine, "withdraw-me").await;
    let d = engine
        .send(Message::new("Withdrawn", "withdraw-me", "w-1"))
        .await
        .unwrap();
    assert!(
        format!("{d:?}").to_lowercase().contains("correlated"),
        "{d:?}"
    );
    // Interrupted by a boundary timer.
    let (timed_out, _) = start(&engine, "forget-me").await;
    clock.advance(Duration::days(31));
    assert!(engine.fire_due_timers().await.unwrap() >= 1);
    assert_eq!(db.count("tasks", "").await, 0);
    assert_eq!(db.count("task_candidates", "").await, 0);
    for (id, end) in [
        (cancelled, "cancelled"),
        (withdrawn, "completed"),
        (timed_out, "completed"),
    ] {
        assert_eq!(status(&db, id).await, end);
    }
    let ended_at = |id: Uuid| {
        let store = db.store.clone();
        async move { store.instance(id).await.unwrap().current_step }
    };
    assert_eq!(ended_at(withdrawn).await.as_deref(), Some("withdrawn"));
    assert_eq!(ended_at(timed_out).await.as_deref(), Some("gave_up"));

    // Compensation: a cancel that undoes a completed step withdraws the task first.
    let comp = ProcessDefinition::builder("comp")
        .send("reserve", "Reserve")
        .compensate(longrun::definition::Compensation::Send {
            send: "Release".into(),
            to: None,
        })
        .user_task("approve", UserTask::new().candidate_groups(["sales"]))
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&comp).await.unwrap();
    let c = engine
        .start(StartRequest::new("comp", "c-1"))
        .await
        .unwrap();
    assert_eq!(db.count("tasks", "").await, 1);
    engine.cancel(c, "no").await.unwrap();
    assert_eq!(db.count("tasks", "").await, 0);
    assert_eq!(status(&db, c).await, "cancelled");
}

#[tokio::test]
async fn a_migrated_instance_takes_its_task_along() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    let (id, task) = start(&engine, "move-me").await;
    engine.claim(task.task_id, "alice").await.unwrap();
    let v2 = ProcessDefinition::builder("review")
        .user_task(
            "check",
            UserTask::new()
                .candidate_groups(["sales"])
                .field("approved", Type::Boolean)
                .field("note", Type::String),
        )
        .timeout_after("P30D", "gave_up")
        .or_message("Withdrawn", "withdrawn")
        .end("done")
        .end("gave_up")
        .end("withdrawn")
        .build()
        .unwrap();
    engine.deploy(&v2).await.unwrap();
    let plan = MigrationPlan {
        mapping: [("review".to_string(), "check".to_string())].into(),
        ..MigrationPlan::default()
    };
    let report = db
        .store
        .migrate_instances("review", 1, 2, &plan, false, clock.now(), "test", |_| {})
        .await
        .unwrap();
    assert_eq!(report.moved, vec![id], "{report:?}");
    let moved = engine.task(task.task_id).await.unwrap().unwrap();
    assert_eq!(moved.task.step, "check");
    assert_eq!(moved.version, 2);
    assert_eq!(moved.task.assignee.as_deref(), Some("alice"), "still hers");
    engine
        .complete(
            task.task_id,
            "alice",
            json!({"approved": false, "note": "no"}),
        )
        .await
        .unwrap();
    assert_eq!(status(&db, id).await, "completed");
}

#[tokio::test]
async fn an_overdue_task_escalates_to_supervisors() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("call_customer")
        .user_task(
            "call",
            UserTask::new().candidate_groups(["service"]).due("P7D"),
        )
        .escalate(
            TimerSpec::After("P7D".into()),
            Reassign {
                candidate_groups: Some(vec!["supervisors".into()]),
                ..Reassign::default()
            },
        )
        .timeout_after("P14D", "cancelled")
        .end("done")
        .end("cancelled")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let id = engine
        .start(StartRequest::new("call_customer", "cust-1"))
        .await
        .unwrap();
    let task = group(&engine, &["service"]).await.remove(0);
    engine.claim(task.task_id, "sam").await.unwrap();
    clock.advance(Duration::days(7) + Duration::minutes(1));
    engine.fire_due_timers().await.unwrap();
    // Released from sam and offered to the supervisors instead; the instance still waits.
    assert!(group(&engine, &["service"]).await.is_empty());
    let escalated = group(&engine, &["supervisors"]).await;
    assert_eq!(escalated.len(), 1);
    assert_eq!(escalated[0].assignee, None);
    assert_eq!(status(&db, id).await, "running");
    let overdue = engine
        .tasks(&TaskQuery {
            due_before: Some(clock.now()),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(overdue.tasks.len(), 1);
    // The two-week window still ends it.
    clock.advance(Duration::days(7));
    engine.fire_due_timers().await.unwrap();
    assert_eq!(db.count("tasks", "").await, 0);
    assert_eq!(
        db.store.instance(id).await.unwrap().current_step.as_deref(),
        Some("cancelled")
    );
}

#[tokio::test]
async fn the_list_pages_in_due_order_with_filters() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("p")
        .user_task(
            "t",
            UserTask::new()
                .candidate_groups(["=team"])
                .due("=due")
                .priority(40),
        )
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    // Seven tasks: due on days 5, 4, ..., 1 for team a; two without a due date.
    for day in (1..=5).rev() {
        let due = (clock.now() + Duration::days(day)).to_rfc3339();
        engine
            .start(
                StartRequest::new("p", format!("d{day}"))
                    .variables(json!({"team": "a", "due": due})),
            )
            .await
            .unwrap();
    }
    for k in ["n1", "n2"] {
        engine
            .start(StartRequest::new("p", k).variables(json!({"team": "b"})))
            .await
            .unwrap();
    }
    let mut keys = Vec::new();
    let mut q = TaskQuery {
        limit: 3,
        ..TaskQuery::default()
    };
    loop {
        let page = engine.tasks(&q).await.unwrap();
        keys.extend(page.tasks.iter().map(|t| t.business_key.clone()));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    // n1 and n2 have no due date and the same creation time: their order is their ids'.
    keys[5..].sort();
    assert_eq!(keys, ["d1", "d2", "d3", "d4", "d5", "n1", "n2"]);
    // The same through a group's list.
    let mut q = TaskQuery {
        candidate_groups: vec!["a".into(), "b".into()],
        limit: 2,
        ..TaskQuery::default()
    };
    let mut keys = Vec::new();
    loop {
        let page = engine.tasks(&q).await.unwrap();
        keys.extend(page.tasks.iter().map(|t| t.business_key.clone()));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    // n1 and n2 have no due date and the same creation time: their order is their ids'.
    keys[5..].sort();
    assert_eq!(keys, ["d1", "d2", "d3", "d4", "d5", "n1", "n2"]);
    // Filters.
    let due_soon = engine
        .tasks(&TaskQuery {
            due_before: Some(clock.now() + Duration::days(2) + Duration::hours(1)),
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(due_soon.tasks.len(), 2);
    let high = engine
        .tasks(&TaskQuery {
            min_priority: 41,
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert!(high.tasks.is_empty());
    let first = engine.tasks(&TaskQuery::default()).await.unwrap().tasks[0].task_id;
    engine.claim(first, "zoe").await.unwrap();
    let unclaimed = engine
        .tasks(&TaskQuery {
            candidate_groups: vec!["a".into()],
            unassigned: true,
            ..TaskQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(unclaimed.tasks.len(), 4);
    for bad in [
        TaskQuery {
            limit: 501,
            ..TaskQuery::default()
        },
        TaskQuery {
            after: Some("nonsense".into()),
            ..TaskQuery::default()
        },
    ] {
        assert!(matches!(engine.tasks(&bad).await, Err(Error::BadInput(_))));
    }
    // The report.
    let rows = db
        .sql()
        .await
        .query(
            &format!(
                "SELECT candidate_group, open, unclaimed FROM \"{}\".report_tasks ORDER BY 1",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let report: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(report, [("a".into(), 5, 4), ("b".into(), 2, 2)]);
}

#[tokio::test]
async fn a_task_for_people_a_variable_names_fails_clearly_when_it_holds_no_names() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    let def = ProcessDefinition::builder("p")
        .user_task("t", UserTask::new().assignee("=owner").due("=deadline"))
        .end("done")
        .build()
        .unwrap();
    engine.deploy(&def).await.unwrap();
    let ok = engine
        .start(StartRequest::new("p", "ok").variables(json!({"owner": "ann"})))
        .await
        .unwrap();
    let task = engine.tasks(&TaskQuery::default()).await.unwrap().tasks;
    assert_eq!(task[0].assignee.as_deref(), Some("ann"));
    assert_eq!(task[0].due_at, None, "no deadline: no due date");
    assert_eq!(status(&db, ok).await, "running");
    let bad = engine
        .start(StartRequest::new("p", "bad").variables(json!({"owner": 7})))
        .await
        .unwrap();
    let view = db.store.instance(bad).await.unwrap();
    assert_eq!(view.status, "failed");
    assert!(
        view.error
            .as_deref()
            .unwrap_or("")
            .contains("variable owner"),
        "{view:?}"
    );
}

#[tokio::test]
async fn the_activity_history_times_claims_and_completions() {
    use longrun::store::ActivityHistory;
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    let (_, task) = start(&engine, "timed").await;
    let (_, open) = start(&engine, "still-open").await;
    clock.advance(Duration::minutes(10));
    engine.claim(task.task_id, "alice").await.unwrap();
    engine.claim(open.task_id, "bob").await.unwrap();
    clock.advance(Duration::minutes(20));
    engine
        .complete(task.task_id, "alice", json!({"approved": true, "note": ""}))
        .await
        .unwrap();
    crate::common::eventually("the projection catches up", || async {
        db.store
            .project_all(&ActivityHistory, Utc::now, |_| {})
            .await
            .unwrap();
        db.store.projections().await.unwrap()[0].behind == 0
    })
    .await;
    let row = db
        .sql()
        .await
        .query_one(
            &format!(
                "SELECT completed, open, to_claim_p50_s::float8, to_complete_p50_s::float8 \
                 FROM \"{}\".report_task_durations",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap();
    let got: (i64, i64, f64, f64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(got, (1, 1, 600.0, 1800.0));
    let outcome: String = db
        .sql()
        .await
        .query_one(
            &format!(
                "SELECT outcome FROM \"{}\".activity WHERE kind = 'user_task' AND ended_at IS NOT NULL",
                db.schema()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(outcome, "completed by alice");
}

#[tokio::test]
async fn a_completion_in_the_caller_s_transaction_happens_only_if_it_commits() {
    let db = TestDb::new().await;
    let clock = clock();
    let engine = engine_on(&db, &clock);
    engine.deploy(&review()).await.unwrap();
    let (id, task) = start(&engine, "tx").await;
    let complete = || TaskAction::Complete {
        variables: json!({"approved": true, "note": "in a tx"})
            .as_object()
            .unwrap()
            .clone(),
        force: false,
    };
    let mut client = db.sql().await;
    {
        let tx = client.transaction().await.unwrap();
        engine
            .act_on_task_tx(&tx, task.task_id, complete(), "alice")
            .await
            .unwrap();
        tx.rollback().await.unwrap();
    }
    assert_eq!(status(&db, id).await, "running");
    assert_eq!(db.count("tasks", "").await, 1, "rolled back: still open");
    let tx = client.transaction().await.unwrap();
    engine
        .act_on_task_tx(&tx, task.task_id, complete(), "alice")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(status(&db, id).await, "completed");
    // The follow-up filter.
    let (_, other) = start(&engine, "follow").await;
    engine
        .act_on_task(
            other.task_id,
            TaskAction::Update {
                due_at: None,
                follow_up_at: Some(Some(clock.now() + Duration::hours(2))),
                priority: None,
            },
            "alice",
        )
        .await
        .unwrap();
    let soon = |h: i64| TaskQuery {
        follow_up_before: Some(clock.now() + Duration::hours(h)),
        ..TaskQuery::default()
    };
    assert!(engine.tasks(&soon(1)).await.unwrap().tasks.is_empty());
    assert_eq!(engine.tasks(&soon(3)).await.unwrap().tasks.len(), 1);
}
