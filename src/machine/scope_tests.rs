//! Embedded subprocesses: entering and completing, parallel branches inside, boundary events
//! that end everything inside, business errors caught around them, terminate and compensation
//! inside.

use super::*;
use crate::definition::{BoundaryEvent, Compensation, TimerSpec};

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.type_name()).collect()
}

fn timer_of(state: &InstanceState, step: &str) -> Uuid {
    state
        .timers
        .iter()
        .find(|t| t.step == step)
        .map(|t| t.timer_id)
        .unwrap_or_else(|| panic!("no timer of {step}: {:?}", state.timers))
}

/// check -> review { approve -> (fork: a, b) -> ends } (2 days, or `too_late`) -> ship.
fn review() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .service("check", "check")
        .subprocess("review", |b| {
            b.service("approve", "approve")
                .parallel("fork", ["legal", "sales"])
                .service("legal", "legal")
                .next("legal_done")
                .service("sales", "sales")
                .next("sales_done")
                .end("legal_done")
                .end("sales_done")
        })
        .timeout_after("P2D", "too_late")
        .or_message("OrderWithdrawn", "withdrawn")
        .service("ship", "ship")
        .end("done")
        .end("too_late")
        .end("withdrawn")
        .build()
        .unwrap()
}

#[test]
fn a_subprocess_runs_its_steps_and_completes_when_its_last_branch_ends() {
    let def = review();
    assert_eq!(def.step("ship").unwrap().within, None);
    assert_eq!(def.step("legal").unwrap().within.as_deref(), Some("review"));
    assert_eq!(def.step("review").unwrap().next.as_deref(), Some("ship"));
    let (_, s) = run(&def, &[start_with(json!({}))]);
    let (events, s) = {
        let mut all = vec![start_with(json!({})), done(job_at(&s, "check"))];
        let (_, s1) = run(&def, &all);
        all.push(done(job_at(&s1, "approve")));
        run(&def, &all)
    };
    assert!(types(&events[1]).contains(&"SubprocessEntered"));
    assert!(matches!(s.wait_at("review"), Some(Wait::Scope { .. })));
    assert!(s.wait_at("legal").is_some() && s.wait_at("sales").is_some());
    // The subprocess's boundary timer runs and its boundary message is awaited.
    timer_of(&s, "review");
    assert!(s
        .awaited_messages(&compile(def.clone()))
        .contains(&("OrderWithdrawn".to_string(), "o-1".to_string())));
    // One branch ends: the subprocess still runs.
    let legal = done(job_at(&s, "legal"));
    let sales = done(job_at(&s, "sales"));
    let mut inputs = vec![
        start_with(json!({})),
        done(job_at(&run(&def, &[start_with(json!({}))]).1, "check")),
    ];
    let s1 = run(&def, &inputs).1;
    inputs.push(done(job_at(&s1, "approve")));
    inputs.push(legal);
    let (events, s2) = run(&def, &inputs);
    assert_eq!(
        types(events.last().unwrap()),
        ["JobCompleted", "BranchEnded"]
    );
    assert!(s2.wait_at("review").is_some());
    inputs.push(sales);
    let (events, s3) = run(&def, &inputs);
    assert_eq!(
        types(events.last().unwrap()),
        [
            "JobCompleted",
            "SubprocessCompleted",
            "TimerCancelled",
            "JobCreated"
        ]
    );
    assert!(s3.wait_at("review").is_none() && s3.timers.is_empty());
    assert!(matches!(s3.wait_at("ship"), Some(Wait::Job { .. })));
    assert!(s3.awaited_messages(&compile(def.clone())).is_empty());
}

/// The instance at the subprocess, both inner branches waiting.
fn inside_review(def: &ProcessDefinition) -> Vec<Input> {
    let mut inputs = vec![start_with(json!({}))];
    let s = run(def, &inputs).1;
    inputs.push(done(job_at(&s, "check")));
    let s = run(def, &inputs).1;
    inputs.push(done(job_at(&s, "approve")));
    inputs
}

#[test]
fn an_interrupting_boundary_timer_ends_everything_inside() {
    let def = review();
    let mut inputs = inside_review(&def);
    let s = run(&def, &inputs).1;
    inputs.push(Input::TimerFired {
        timer_id: timer_of(&s, "review"),
    });
    let (events, s) = run(&def, &inputs);
    let last = events.last().unwrap();
    let interrupted: Vec<&str> = last
        .iter()
        .filter_map(|e| match e {
            Event::WaitInterrupted { step, .. } => Some(step.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(interrupted.len(), 3, "{last:?}");
    assert_eq!(interrupted.last(), Some(&"review"));
    assert!(interrupted.contains(&"legal") && interrupted.contains(&"sales"));
    assert_eq!(s.status, Status::Completed);
    assert!(matches!(last.last(), Some(Event::InstanceCompleted { step }) if step == "too_late"));
    assert_eq!(fold(&events.concat()), s);
}

#[test]
fn a_boundary_message_on_a_subprocess_ends_it() {
    let def = review();
    let mut inputs = inside_review(&def);
    inputs.push(Input::Message {
        message_id: "m1".into(),
        name: "OrderWithdrawn".into(),
        payload: json!({"why": "changed mind"}),
    });
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert!(s.waits.is_empty() && s.timers.is_empty());
    assert_eq!(s.variables["why"], "changed mind");
}

fn with_errors() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .subprocess("outer", |b| {
            b.subprocess("inner", |b| {
                b.service("charge", "charge")
                    .exclusive("ok")
                    .when("declined == true", "declined")
                    .otherwise("charged")
                    .error_end("declined", "CardDeclined")
                    .end("charged")
            })
            .end("outer_done")
        })
        .on_error("CardDeclined", "ask_customer")
        .on_error("Fraud", "block")
        .end("done")
        .service("ask_customer", "ask")
        .next("done")
        .end("block")
        .build()
        .unwrap()
}

#[test]
fn an_error_end_inside_is_caught_by_the_innermost_subprocess_that_routes_it() {
    let def = with_errors();
    let mut inputs = vec![start_with(json!({}))];
    let s = run(&def, &inputs).1;
    assert!(s.wait_at("outer").is_some() && s.wait_at("inner").is_some());
    inputs.push(Input::JobCompleted {
        job_id: job_at(&s, "charge"),
        result: json!({"declined": true}),
    });
    let (events, s) = run(&def, &inputs);
    let last = events.last().unwrap();
    assert!(last.iter().any(|e| matches!(e, Event::BusinessErrorCaught { step, code, .. } if step == "outer" && code == "CardDeclined")));
    assert!(!last
        .iter()
        .any(|e| matches!(e, Event::ErrorThrown { .. } | Event::InstanceFailed { .. })));
    assert_eq!(s.status, Status::Running);
    assert_eq!(s.waits.len(), 1);
    assert!(matches!(s.wait_at("ask_customer"), Some(Wait::Job { .. })));
    assert_eq!(s.error_code, None);
}

#[test]
fn a_handlers_business_error_no_step_routes_is_caught_around_it() {
    let def = with_errors();
    let mut inputs = vec![start_with(json!({}))];
    let s = run(&def, &inputs).1;
    inputs.push(Input::JobFailed {
        job_id: job_at(&s, "charge"),
        error: "looks like fraud".into(),
        code: Some("Fraud".into()),
    });
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    // An error nobody routes is retried (or raises an incident) as before.
    let mut inputs = vec![start_with(json!({}))];
    let s = run(&def, &inputs).1;
    inputs.push(Input::JobFailed {
        job_id: job_at(&s, "charge"),
        error: "who knows".into(),
        code: Some("Unknown".into()),
    });
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.incidents.len(), 1);
    assert!(s.wait_at("inner").is_some());
}

#[test]
fn terminate_inside_a_subprocess_ends_only_that_subprocess() {
    let def = ProcessDefinition::builder("p")
        .parallel("fork", ["sub", "outside"])
        .subprocess("sub", |b| {
            b.parallel("f", ["a", "quit"])
                .service("a", "a")
                .next("a_end")
                .terminate("quit")
                .end("a_end")
        })
        .next("join")
        .service("outside", "outside")
        .next("join")
        .join("join")
        .end("done")
        .build()
        .unwrap();
    let (_, s) = run(&def, &[start_with(json!({}))]);
    // `a`'s job was withdrawn when `quit` ended the subprocess; `outside` runs on.
    assert!(s.wait_at("a").is_none() && s.wait_at("sub").is_none());
    assert!(matches!(s.wait_at("outside"), Some(Wait::Job { .. })));
    assert_eq!(s.joins.get("join"), Some(&1));
    let (_, s) = run(&def, &[start_with(json!({})), done(job_at(&s, "outside"))]);
    assert_eq!(s.status, Status::Completed);
}

#[test]
fn a_compensate_step_inside_undoes_only_the_subprocess_own_steps() {
    let def = ProcessDefinition::builder("p")
        .service("reserve", "reserve")
        .compensate(Compensation::Send {
            send: "ReleaseStock".into(),
            to: None,
        })
        .subprocess("pay", |b| {
            b.service("charge", "charge")
                .compensate(Compensation::Send {
                    send: "Refund".into(),
                    to: None,
                })
                .compensate_all("undo_payment")
                .end("paid")
        })
        .end("done")
        .build()
        .unwrap();
    let mut inputs = vec![start_with(json!({}))];
    let s = run(&def, &inputs).1;
    inputs.push(done(job_at(&s, "reserve")));
    let s = run(&def, &inputs).1;
    inputs.push(done(job_at(&s, "charge")));
    let (events, s) = run(&def, &inputs);
    let all = events.concat();
    let sent: Vec<&str> = all
        .iter()
        .filter_map(|e| match e {
            Event::MessageSent { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(sent, ["Refund"]);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.compensable, ["reserve"]);
    assert_eq!(fold(&events.concat()), s);
}

#[test]
fn a_cancel_inside_withdraws_everything_and_undoes_the_inner_steps_too() {
    let def = ProcessDefinition::builder("p")
        .subprocess("pay", |b| {
            b.service("charge", "charge")
                .compensate(Compensation::Handler {
                    handler: "refund".into(),
                })
                .receive("confirmed", "Confirmed")
                .end("paid")
        })
        .interrupt_on(TimerSpec::After("PT1H".into()), "late")
        .end("done")
        .end("late")
        .build()
        .unwrap();
    let mut inputs = vec![start_with(json!({}))];
    let s = run(&def, &inputs).1;
    inputs.push(done(job_at(&s, "charge")));
    inputs.push(Input::Cancel {
        reason: "customer".into(),
        by: "ops".into(),
    });
    let (_, s) = run(&def, &inputs);
    assert!(s.wait_at("pay").is_none() && s.timers.is_empty());
    assert!(matches!(s.wait_at("charge"), Some(Wait::Job { handler, .. }) if handler == "refund"));
}

#[test]
fn scopes_are_checked_with_the_path_of_each_problem() {
    let base = review();
    let problems = |def: ProcessDefinition| match def.validate() {
        Err(crate::definition::Error::Invalid(p)) => p
            .into_iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        other => panic!("expected problems, got {other:?}"),
    };
    // A step inside leads out of its subprocess.
    let mut def = base.clone();
    let i = def.steps.iter().position(|s| s.id == "legal").unwrap();
    def.steps[i].next = Some("ship".into());
    let p = problems(def);
    assert!(p.contains(&format!("steps[{i}]: step \"legal\" (in subprocess \"review\") leads to \"ship\" (in the top level)")), "{p}");
    // Unknown, not a subprocess, the first step inside one.
    let mut def = base.clone();
    let i = def.steps.iter().position(|s| s.id == "ship").unwrap();
    def.steps[i].within = Some("nowhere".into());
    assert!(problems(def).contains(&format!("steps[{i}].in: unknown step \"nowhere\"")));
    let mut def = base.clone();
    def.steps[i].within = Some("check".into());
    assert!(problems(def).contains("is not a subprocess"));
    let mut def = base.clone();
    def.steps[0].within = Some("review".into());
    assert!(problems(def).contains("steps[0].in"));
    // A subprocess without an end inside.
    let def = ProcessDefinition::builder("p")
        .subprocess("s", |b| b.service("a", "a").next("a"))
        .end("done")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        def.contains("subprocess \"s\" has no end step inside it"),
        "{def}"
    );
}

#[test]
fn a_subprocess_round_trips_through_json_and_equals_the_builder() {
    let def = review();
    let json = def.to_json();
    assert!(json.contains("\"type\": \"subprocess\"") && json.contains("\"in\": \"review\""));
    assert!(json.contains("\"start\": \"approve\""));
    assert_eq!(ProcessDefinition::from_json(&json).unwrap(), def);
}

#[test]
fn a_non_interrupting_timer_runs_its_path_beside_the_waiting_subprocess() {
    let def = ProcessDefinition::builder("p")
        .subprocess("review", |b| b.receive("docs", "Docs").end("reviewed"))
        .meanwhile(TimerSpec::Cycle("R2/P1D".into()), "remind")
        .end("done")
        .send("remind", "Reminder")
        .end("reminded")
        .build()
        .unwrap();
    let s = run(&def, &[start_with(json!({}))]).1;
    let mut inputs = vec![
        start_with(json!({})),
        Input::TimerFired {
            timer_id: timer_of(&s, "review"),
        },
    ];
    let (events, s) = run(&def, &inputs);
    // The reminder went out and its path ended; the subprocess still waits, its cycle on.
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::MessageSent { name, .. } if name == "Reminder")));
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::BranchEnded { step } if step == "reminded")));
    assert!(matches!(s.wait_at("docs"), Some(Wait::Message { .. })));
    assert_eq!(s.timers.len(), 1);
    inputs.push(Input::Message {
        message_id: "d1".into(),
        name: "Docs".into(),
        payload: json!({}),
    });
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert!(s.timers.is_empty());
}

#[test]
fn a_non_interrupting_message_or_signal_runs_its_path_each_time_it_arrives() {
    let def = ProcessDefinition::builder("p")
        .subprocess("review", |b| b.receive("docs", "Docs").end("reviewed"))
        .meanwhile(BoundaryEvent::Message("Question".into()), "answer")
        .meanwhile(BoundaryEvent::Signal("Audit".into()), "log")
        .end("done")
        .send("answer", "Answer")
        .end("answered")
        .send("log", "Logged")
        .end("logged")
        .build()
        .unwrap();
    let json = def.to_json();
    assert_eq!(ProcessDefinition::from_json(&json).unwrap(), def);
    let msg = |id: &str, name: &str, payload: Value| Input::Message {
        message_id: id.into(),
        name: name.into(),
        payload,
    };
    let mut inputs = vec![
        start_with(json!({})),
        msg("q1", "Question", json!({"q": 1})),
        msg("q2", "Question", json!({"q": 2})),
        msg("a1", "signal:Audit", json!({})),
    ];
    let (events, s) = run(&def, &inputs);
    // Each question ran the path beside the subprocess and set its payload; the subprocess
    // and its receive still wait, still listening for more.
    for (i, q) in [(1, 1), (2, 2)] {
        assert!(
            matches!(&events[i][0], Event::BoundaryMessageReceived { step, set, .. }
            if step == "review" && set["q"] == json!(q))
        );
        assert!(events[i]
            .iter()
            .any(|e| matches!(e, Event::MessageSent { name, .. } if name == "Answer")));
        assert!(events[i]
            .iter()
            .any(|e| matches!(e, Event::BranchEnded { step } if step == "answered")));
    }
    assert!(events[3]
        .iter()
        .any(|e| matches!(e, Event::MessageSent { name, .. } if name == "Logged")));
    assert_eq!(s.variables["q"], json!(2));
    assert!(matches!(s.wait_at("review"), Some(Wait::Scope { .. })));
    assert!(matches!(s.wait_at("docs"), Some(Wait::Message { .. })));
    // Their effects keep the subscriptions (nothing ends a wait).
    let fx = effects(
        &compile(def.clone()),
        Uuid::nil(),
        &s,
        &events[1][0],
        chrono::Utc::now(),
    );
    assert!(fx.is_empty(), "{fx:?}");
    inputs.push(msg("d1", "Docs", json!({})));
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    // Once the subprocess is over, a question is not for this instance.
    let q3 = msg("q3", "Question", json!({}));
    let seq = 100;
    assert!(decide(&compile(def.clone()), &s, &q3, ctx(seq)).is_err());
}

#[test]
fn a_boundary_path_runs_once_at_a_time() {
    let def = ProcessDefinition::builder("p")
        .receive("docs", "Docs")
        .meanwhile(BoundaryEvent::Message("Question".into()), "answer")
        .end("done")
        .service("answer", "answer")
        .end("answered")
        .build()
        .unwrap();
    let q = |id: &str| Input::Message {
        message_id: id.into(),
        name: "Question".into(),
        payload: json!({"q": id}),
    };
    let mut inputs = vec![start_with(json!({})), q("q1"), q("q2")];
    let (events, s) = run(&def, &inputs);
    // The second question is taken while the first is being answered: no second run.
    assert!(types(&events[1]).contains(&"JobCreated"));
    assert_eq!(types(&events[2]), ["BoundaryMessageReceived"]);
    assert_eq!(s.variables["q"], json!("q2"));
    inputs.push(done(job_at(&s, "answer")));
    inputs.push(q("q3"));
    let (events, s) = run(&def, &inputs);
    assert!(types(&events[4]).contains(&"JobCreated"), "{:?}", events[4]);
    assert!(matches!(s.wait_at("docs"), Some(Wait::Message { .. })));
}
