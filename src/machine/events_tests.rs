//! Event subprocesses: armed while their scope runs, interrupting or not, started by a
//! message, a timer or an error, and withdrawn when their scope ends.

use super::*;
use crate::definition::{BoundaryEvent, TimerSpec};

fn types(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.type_name()).collect()
}

/// Waits for payment; a cancel message at any time ends it another way; a reminder every
/// hour (not interrupting) runs beside it; a `Fraud` error ends it at `blocked`.
fn order() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .receive("paid", "PaymentReceived")
        .service("check", "check")
        .end("done")
        .event_subprocess(
            "on_cancel",
            BoundaryEvent::Message("OrderCancelled".into()),
            true,
            |b| b.send("tell", "Cancelled").end("cancelled"),
        )
        .event_subprocess(
            "remind",
            BoundaryEvent::Timer(TimerSpec::After("PT1H".into())),
            false,
            |b| b.service("nudge", "nudge").end("nudged"),
        )
        .error_subprocess("on_fraud", "Fraud", |b| {
            b.send("alert", "Alert").end("blocked")
        })
        .build()
        .unwrap()
}

#[test]
fn event_subprocesses_are_armed_with_their_scope_and_withdrawn_at_its_end() {
    let def = order();
    assert_eq!(def.step("paid").unwrap().next.as_deref(), Some("check"));
    let p = compile(def.clone());
    let (events, s) = run(&def, &[start_with(json!({}))]);
    let armed = events[0]
        .iter()
        .filter(|e| matches!(e, Event::EventSubprocessArmed { .. }))
        .count();
    assert_eq!(armed, 3);
    let mut awaited = s.awaited_messages(&p);
    awaited.sort();
    assert_eq!(
        awaited,
        [
            ("OrderCancelled".to_string(), "o-1".to_string()),
            ("PaymentReceived".to_string(), "o-1".to_string())
        ]
    );
    assert_eq!(s.timers.len(), 1);
    // The payment comes, the check completes: the instance ends and nothing listens on.
    let paid = Input::Message {
        message_id: "m1".into(),
        name: "PaymentReceived".into(),
        payload: json!({}),
    };
    let s2 = run(&def, &[start_with(json!({})), paid.clone()]).1;
    let (events, s3) = run(
        &def,
        &[start_with(json!({})), paid, done(job_at(&s2, "check"))],
    );
    assert_eq!(s3.status, Status::Completed);
    assert!(s3.waits.is_empty() && s3.timers.is_empty());
    let last = types(events.last().unwrap());
    assert_eq!(
        last.iter().filter(|t| **t == "WaitInterrupted").count(),
        3,
        "{last:?}"
    );
    assert!(last.contains(&"TimerCancelled"));
    assert_eq!(fold(&events.concat()), s3);
}

#[test]
fn an_interrupting_message_ends_everything_and_the_instance_ends_with_it() {
    let def = order();
    let (_, s) = run(
        &def,
        &[
            start_with(json!({})),
            Input::Message {
                message_id: "c1".into(),
                name: "OrderCancelled".into(),
                payload: json!({"reason": "changed mind"}),
            },
        ],
    );
    assert_eq!(s.status, Status::Completed);
    assert!(s.waits.is_empty() && s.timers.is_empty(), "{s:?}");
    assert_eq!(s.variables["reason"], "changed mind");
}

#[test]
fn a_non_interrupting_timer_runs_beside_the_flow_and_listens_again() {
    let def = order();
    let s = run(&def, &[start_with(json!({}))]).1;
    let timer = s.timers[0].timer_id;
    let mut inputs = vec![start_with(json!({})), Input::TimerFired { timer_id: timer }];
    let s = run(&def, &inputs).1;
    // The flow still waits for payment; the reminder runs.
    assert!(matches!(s.wait_at("paid"), Some(Wait::Message { .. })));
    assert!(matches!(s.wait_at("nudge"), Some(Wait::Job { .. })));
    assert!(s.timers.is_empty());
    inputs.push(done(job_at(&s, "nudge")));
    let (events, s) = run(&def, &inputs);
    // Done: armed again, with a new timer; the flow goes on.
    assert!(types(events.last().unwrap()).contains(&"EventSubprocessArmed"));
    assert_eq!(s.timers.len(), 1);
    assert!(matches!(s.wait_at("remind"), Some(Wait::Armed { .. })));
    assert_eq!(s.status, Status::Running);
}

#[test]
fn an_error_no_step_routes_starts_the_error_event_subprocess() {
    let def = order();
    let paid = Input::Message {
        message_id: "m1".into(),
        name: "PaymentReceived".into(),
        payload: json!({}),
    };
    let s = run(&def, &[start_with(json!({})), paid.clone()]).1;
    let (_, s) = run(
        &def,
        &[
            start_with(json!({})),
            paid,
            Input::JobFailed {
                job_id: job_at(&s, "check"),
                error: "stolen card".into(),
                code: Some("Fraud".into()),
            },
        ],
    );
    assert_eq!(s.status, Status::Completed);
    assert!(s.waits.is_empty() && s.timers.is_empty(), "{s:?}");
}

#[test]
fn inside_a_subprocess_an_error_event_subprocess_comes_before_its_route() {
    let def = ProcessDefinition::builder("p")
        .subprocess("pay", |b| {
            b.service("charge", "charge").end("paid").error_subprocess(
                "declined",
                "Declined",
                |b| b.service("ask", "ask_for_card").end("asked"),
            )
        })
        .on_error("Declined", "given_up")
        .end("done")
        .end("given_up")
        .build()
        .unwrap();
    let s = run(&def, &[start_with(json!({}))]).1;
    assert!(matches!(s.wait_at("declined"), Some(Wait::Armed { .. })));
    let mut inputs = vec![
        start_with(json!({})),
        Input::JobFailed {
            job_id: job_at(&s, "charge"),
            error: "declined".into(),
            code: Some("Declined".into()),
        },
    ];
    let s = run(&def, &inputs).1;
    assert!(matches!(s.wait_at("ask"), Some(Wait::Job { .. })));
    assert!(matches!(s.wait_at("pay"), Some(Wait::Scope { .. })));
    inputs.push(done(job_at(&s, "ask")));
    let (events, s) = run(&def, &inputs);
    // The event subprocess completed, so did the subprocess: on at `done`.
    assert_eq!(s.status, Status::Completed);
    assert!(
        matches!(events.last().unwrap().last(), Some(Event::InstanceCompleted { step }) if step == "done")
    );
}

#[test]
fn event_subprocesses_are_checked_and_round_trip_through_json() {
    let def = order();
    let json = def.to_json();
    assert!(json.contains("\"type\": \"event_subprocess\""), "{json}");
    assert!(json.contains("\"interrupting\": false"), "{json}");
    assert_eq!(ProcessDefinition::from_json(&json).unwrap(), def);
    // A flow into an event subprocess is refused.
    let mut bad = def.clone();
    let i = bad.steps.iter().position(|s| s.id == "check").unwrap();
    bad.steps[i].next = Some("on_cancel".into());
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("leads to event subprocess \"on_cancel\""), "{e}");
    let e = ProcessDefinition::from_json(
        r#"{"process": "p", "steps": [{"id": "a", "type": "end"},
            {"id": "e", "type": "event_subprocess", "start": "x", "code": "X", "interrupting": false},
            {"id": "x", "type": "end", "in": "e"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("always interrupts"), "{e}");
}
