use crate::definition::compile;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::definition::ProcessDefinition;
use crate::definition::StepKind;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

fn order() -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .service("reserve", "reserve_stock")
        .output("reservation")
        .send("charge", "RetrievePayment")
        .to("payment")
        .key("orderId")
        .payload(["orderId", "amount"])
        .receive("paid", "PaymentReceived")
        .key("orderId")
        .end("done")
        .build()
        .unwrap()
}

fn ctx(seq: i64) -> Context {
    Context {
        instance_id: Uuid::from_u128(7),
        next_seq: seq,
        now: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

fn fold(events: &[Event]) -> InstanceState {
    let mut s = InstanceState::default();
    for e in events {
        evolve(&mut s, e);
    }
    s
}

fn start_input() -> Input {
    let mut vars = Map::new();
    vars.insert("orderId".into(), json!("o-1"));
    vars.insert("amount".into(), json!(42));
    Input::Start {
        business_key: "o-1".into(),
        variables: vars,
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

#[test]
fn start_runs_forward_to_the_first_wait() {
    let def = order();
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(matches!(events[0], Event::InstanceStarted { .. }));
    let job_id = derived_id(Uuid::from_u128(7), 2);
    assert_eq!(
        events[1],
        Event::JobCreated {
            step: "reserve".into(),
            job_id,
            handler: "reserve_stock".into()
        }
    );
    let state = fold(&events);
    assert_eq!(state.status, Status::Running);
    assert_eq!(state.waits.first().unwrap().step(), "reserve");
}

#[test]
fn a_completed_job_maps_its_result_and_sends_then_waits() {
    let def = order();
    let mut events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    let state = fold(&events);
    let Some(Wait::Job { job_id, .. }) = state.waits.first().cloned() else {
        panic!("waits for a job")
    };
    let more = decide(
        &compile(def.clone()),
        &state,
        &Input::JobCompleted {
            job_id,
            result: json!({"slot": 3}),
        },
        ctx(3),
    )
    .unwrap();
    let types: Vec<_> = more.iter().map(Event::type_name).collect();
    assert_eq!(types, ["JobCompleted", "MessageSent", "MessageAwaited"]);
    match &more[1] {
        Event::MessageSent {
            key,
            payload,
            kind,
            to,
            message_id,
            ..
        } => {
            assert_eq!(key, "o-1");
            assert_eq!(payload, &json!({"orderId": "o-1", "amount": 42}));
            assert_eq!(*kind, MessageKind::Command);
            assert_eq!(to.as_deref(), Some("payment"));
            assert_eq!(*message_id, derived_id(Uuid::from_u128(7), 4));
        }
        other => panic!("unexpected {other:?}"),
    }
    events.extend(more);
    let state = fold(&events);
    assert_eq!(state.variables["reservation"], json!({"slot": 3}));
    assert_eq!(
        state.waits.first().cloned(),
        Some(Wait::Message {
            step: "paid".into(),
            name: "PaymentReceived".into(),
            key: "o-1".into()
        })
    );
}

#[test]
fn inputs_that_do_not_fit_are_rejected() {
    let def = order();
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    let state = fold(&events);
    assert_eq!(
        decide(&compile(def.clone()), &state, &start_input(), ctx(3)),
        Err(Rejection::AlreadyStarted)
    );
    let wrong_job = Input::JobCompleted {
        job_id: Uuid::from_u128(1),
        result: json!(null),
    };
    assert_eq!(
        decide(&compile(def.clone()), &state, &wrong_job, ctx(3)),
        Err(Rejection::NotWaitingFor {
            waiting_at: "reserve".into(),
            what: "job"
        })
    );
    let msg = Input::Message {
        message_id: "m".into(),
        name: "PaymentReceived".into(),
        payload: json!({}),
    };
    assert!(matches!(
        decide(&compile(def.clone()), &state, &msg, ctx(3)),
        Err(Rejection::NotWaitingFor { .. })
    ));
    assert_eq!(
        decide(
            &compile(def.clone()),
            &InstanceState::default(),
            &msg,
            ctx(1)
        ),
        Err(Rejection::NotRunning("new"))
    );
}

#[test]
fn a_failed_job_raises_an_incident_to_retry_or_cancel() {
    let def = order();
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    let state = fold(&events);
    let Some(Wait::Job { job_id, .. }) = state.waits.first().cloned() else {
        panic!()
    };
    let more = decide(
        &compile(def.clone()),
        &state,
        &Input::JobFailed {
            job_id,
            error: "boom".into(),
            code: None,
        },
        ctx(3),
    )
    .unwrap();
    let mut all = events;
    all.extend(more);
    let state = fold(&all);
    let _ = &state;
    // Without a retry policy the first failure raises an incident; the instance stays.
    assert_eq!(state.status, Status::Running);
    let incident = state.incidents.first().cloned().expect("an incident");
    assert_eq!(
        (
            incident.step.as_str(),
            incident.error.as_str(),
            incident.attempts
        ),
        ("reserve", "boom", 1)
    );
    assert_eq!(state.waits.first().map(Wait::step), Some("reserve"));
    // An operator retries: the same job id runs again, from attempt 1.
    let retry = decide(
        &compile(order()),
        &state,
        &Input::Retry {
            variables: None,
            by: String::new(),
        },
        ctx(5),
    )
    .unwrap();
    let types: Vec<_> = retry.iter().map(Event::type_name).collect();
    assert_eq!(types, ["IncidentResolved", "JobRetryScheduled"]);
    // Or cancels.
    let cancel = decide(
        &compile(order()),
        &state,
        &Input::Cancel {
            reason: "customer".into(),
            by: "alice".into(),
        },
        ctx(5),
    )
    .unwrap();
    // Who asked is recorded with the cancel.
    assert!(cancel
        .iter()
        .any(|e| matches!(e, Event::InstanceCancelled { by, .. } if by == "alice")));
    let mut all2 = all.clone();
    all2.extend(cancel);
    assert_eq!(fold(&all2).status, Status::Cancelled);
}

#[test]
fn events_round_trip_through_json() {
    let def = order();
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    for e in events {
        let text = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }
}

/// A random straight-line process of service, send, receive, timer and user task steps.
fn arb_definition() -> impl Strategy<Value = ProcessDefinition> {
    use crate::definition::{Output, Step};
    prop::collection::vec(0u8..5, 0..12).prop_map(|kinds| {
        let n = kinds.len();
        let mut steps: Vec<Step> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| Step {
                id: format!("s{i}"),
                kind: match k {
                    0 => StepKind::Service {
                        handler: "h".into(),
                        output: Output::Variable(format!("out{i}")),
                        timeout: None,
                        retry: None,
                        errors: Vec::new(),
                        headers: Default::default(),
                    },
                    1 => StepKind::Send {
                        message: "M".into(),
                        to: Some("r".into()),
                        key: None,
                        payload: None,
                    },
                    2 => StepKind::Receive {
                        message: format!("R{i}"),
                        key: None,
                        output: Output::Merge,
                    },
                    4 => StepKind::UserTask(
                        crate::definition::UserTask::new()
                            .candidate_groups(["g"])
                            .due("P1D"),
                    ),
                    _ => StepKind::Timer {
                        timer: crate::definition::TimerSpec::After("PT30S".into()),
                    },
                },
                next: Some(if i + 1 < n {
                    format!("s{}", i + 1)
                } else {
                    "end".into()
                }),
                boundary: if matches!(k, 0 | 2 | 4) {
                    vec![crate::definition::Boundary {
                        on: crate::definition::BoundaryEvent::Timer(
                            crate::definition::TimerSpec::After("P7D".into()),
                        ),
                        interrupting: false,
                        next: None,
                        send: Some(("Remind".into(), None)),
                        assign: None,
                    }]
                } else {
                    Vec::new()
                },
                compensate: None,
                inputs: Vec::new(),
                outputs: Vec::new(),
                within: None,
                multi: None,
                milestone: None,
            })
            .collect();
        steps.push(Step {
            id: "end".into(),
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
        let def = ProcessDefinition {
            process: "p".into(),
            start: None,
            starts: Vec::new(),
            start_signal: None,
            start_timer: None,
            retry: None,
            variables: Default::default(),
            unique_business_key: None,
            retention: None,
            steps,
        };
        def.validate().unwrap();
        def
    })
}

/// Feed each wait the input it expects until the instance ends.
fn drive(def: &ProcessDefinition) -> (Vec<Event>, InstanceState) {
    let mut events = Vec::new();
    let mut state = InstanceState::default();
    let mut input = Input::Start {
        business_key: "k".into(),
        variables: Map::new(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    };
    for round in 0..100 {
        let new = decide(
            &compile(def.clone()),
            &state,
            &input,
            ctx(events.len() as i64 + 1),
        )
        .unwrap();
        // Deciding again on the same state gives the same events.
        assert_eq!(
            new,
            decide(
                &compile(def.clone()),
                &state,
                &input,
                ctx(events.len() as i64 + 1)
            )
            .unwrap()
        );
        for e in &new {
            evolve(&mut state, e);
        }
        events.extend(new);
        let first = state
            .waits
            .iter()
            .find(|w| !matches!(w, Wait::Scope { .. }))
            .cloned();
        input = match &first {
            None | Some(Wait::Scope { .. } | Wait::Armed { .. }) => break,
            Some(Wait::Job { job_id, .. }) => Input::JobCompleted {
                job_id: *job_id,
                result: json!({ "round": round }),
            },
            Some(Wait::Message { name, .. }) => Input::Message {
                message_id: format!("m{round}"),
                name: name.clone(),
                payload: json!({ "got": name }),
            },
            Some(Wait::Timer { timer_id, .. }) => Input::TimerFired {
                timer_id: *timer_id,
            },
            Some(Wait::Gateway { .. }) => match state.timers.first() {
                Some(t) => Input::TimerFired {
                    timer_id: t.timer_id,
                },
                None => break,
            },
            Some(Wait::Child { child_id, .. }) => Input::ChildEnded {
                child_id: *child_id,
                status: Status::Completed,
                variables: Map::new(),
                code: None,
            },
            Some(Wait::Task { task_id, .. }) => Input::Task {
                task_id: *task_id,
                action: crate::machine::TaskAction::Complete {
                    variables: Map::new(),
                    force: false,
                },
                by: "clerk".into(),
            },
        };
    }
    (events, state)
}

proptest! {
    #[test]
    fn every_valid_straight_process_completes(def in arb_definition()) {
        let (events, state) = drive(&def);
        prop_assert_eq!(state.status, Status::Completed);
        // The incrementally evolved state equals a replay from scratch.
        prop_assert_eq!(&fold(&events), &state);
        // One event per step entered, plus start, plus one completion per wait.
        let waits = def.steps.iter().filter(|s| matches!(s.kind, StepKind::Service { .. } | StepKind::Receive { .. } | StepKind::Timer { .. } | StepKind::UserTask(_))).count();
        let boundaries: usize = def.steps.iter().map(|s| s.boundary.len()).sum();
        // Each boundary timer is scheduled as its step is entered and cancelled as it ends.
        prop_assert_eq!(events.len(), 1 + def.steps.len() + waits + 2 * boundaries);
        prop_assert!(state.timers.is_empty(), "no timer outlives its wait");
        // Ids derived from the stream position are unique.
        let mut ids: Vec<Uuid> = events.iter().filter_map(|e| match e {
            Event::JobCreated { job_id, .. } => Some(*job_id),
            Event::MessageSent { message_id, .. } => Some(*message_id),
            Event::TimerScheduled { timer_id, .. } => Some(*timer_id),
            Event::TaskCreated { task_id, .. } => Some(*task_id),
            _ => None,
        }).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        prop_assert_eq!(ids.len(), n);
    }

    #[test]
    fn evolve_is_total(def in arb_definition(), cut in 0usize..40) {
        let (events, _) = drive(&def);
        // Any prefix folds without panicking and never leaves a wait on an ended instance.
        let state = fold(&events[..cut.min(events.len())]);
        if matches!(state.status, Status::Completed | Status::Failed) {
            prop_assert!(state.waits.is_empty());
        }
    }
}

/// Feed inputs one after another, returning the events of each and the final state.
fn run(def: &ProcessDefinition, inputs: &[Input]) -> (Vec<Vec<Event>>, InstanceState) {
    let mut state = InstanceState::default();
    let mut seq = 1;
    let mut all = Vec::new();
    for input in inputs {
        let events = decide(&compile(def.clone()), &state, input, ctx(seq)).unwrap();
        for e in &events {
            evolve(&mut state, e);
        }
        seq += events.len() as i64;
        all.push(events);
    }
    (all, state)
}

fn start_with(vars: Value) -> Input {
    Input::Start {
        business_key: "o-1".into(),
        variables: vars.as_object().unwrap().clone(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

fn job_at(state: &InstanceState, step: &str) -> Uuid {
    match state.wait_at(step) {
        Some(Wait::Job { job_id, .. }) => *job_id,
        other => panic!("no job at {step}: {other:?}"),
    }
}

fn done(job_id: Uuid) -> Input {
    Input::JobCompleted {
        job_id,
        result: json!({}),
    }
}

#[test]
fn states_stored_with_one_wait_and_one_incident_still_load() {
    let old = json!({
        "status": "running", "business_key": "k",
        "wait": {"for": "job", "step": "s", "job_id": Uuid::nil(), "handler": "h", "attempt": 3},
        "incident": {"step": "s", "error": "boom", "attempts": 3, "at": "2026-01-01T00:00:00Z"}
    });
    let state: InstanceState = serde_json::from_value(old).unwrap();
    assert_eq!(state.waits.len(), 1);
    assert_eq!(state.incidents[0].error, "boom");
    let none: InstanceState =
        serde_json::from_value(json!({"status": "running", "business_key": "k", "wait": null}))
            .unwrap();
    assert!(none.waits.is_empty());
}

#[test]
fn a_migration_refuses_what_the_target_cannot_hold() {
    let plan = MigrationPlan::default();
    // Inside a parallel branch the target lacks: a branch already waits at the join.
    let from = flow::fork_join();
    let (_, state) = run(&from, &[start_with(json!({}))]);
    let pay = job_at(&state, "pay");
    let (_, state) = run(&from, &[start_with(json!({})), done(pay)]);
    let linear = ProcessDefinition::builder("fj")
        .service("pay", "pay")
        .service("fetch", "fetch")
        .service("ship", "ship")
        .end("done")
        .build()
        .unwrap();
    let e = plan_migration(&from, &linear, 1, 2, &state, &plan, "t").unwrap_err();
    assert!(e.contains("inside a parallel branch that v2 lacks"), "{e}");
    // A wait at a step of another kind in the target.
    let receive = ProcessDefinition::builder("fj")
        .parallel("fork", ["pay", "fetch"])
        .receive("pay", "Paid")
        .next("join")
        .service("fetch", "fetch")
        .next("join")
        .join("join")
        .service("ship", "ship")
        .end("done")
        .build()
        .unwrap();
    let (_, fresh) = run(&from, &[start_with(json!({}))]);
    let e = plan_migration(&from, &receive, 1, 2, &fresh, &plan, "t").unwrap_err();
    assert!(
        e.contains("service step pay, but pay is a receive step"),
        "{e}"
    );
    // A handler renamed in the target is carried over to the waiting job.
    let renamed = ProcessDefinition::builder("fj")
        .parallel("fork", ["pay", "fetch"])
        .service("pay", "pay_v2")
        .next("join")
        .service("fetch", "fetch")
        .next("join")
        .join("join")
        .service("ship", "ship")
        .end("done")
        .build()
        .unwrap();
    let event = plan_migration(&from, &renamed, 1, 2, &fresh, &plan, "t").unwrap();
    let mut moved = fresh.clone();
    evolve(&mut moved, &event);
    assert!(matches!(moved.wait_at("pay"), Some(Wait::Job { handler, .. }) if handler == "pay_v2"));
    // Running boundary timers need the same boundary events.
    let timed = |after: &str| {
        ProcessDefinition::builder("t")
            .receive("wait", "Go")
            .timeout_after(after, "late")
            .end("done")
            .end("late")
            .build()
            .unwrap()
    };
    let (_, waiting) = run(&timed("P1D"), &[start_with(json!({}))]);
    let e = plan_migration(&timed("P1D"), &timed("P2D"), 1, 2, &waiting, &plan, "t").unwrap_err();
    assert!(e.contains("boundary events differ"), "{e}");
    assert!(plan_migration(&timed("P1D"), &timed("P1D"), 1, 2, &waiting, &plan, "t").is_ok());
}

/// A definition stored under an older, laxer grammar may hold a timer or timeout whose due
/// time cannot be computed: the instance fails with the reason; nothing panics.
#[test]
fn a_timer_whose_due_time_cannot_be_computed_fails_the_instance_without_panicking() {
    let too_long = format!("P{}", "36500D".repeat(2700));
    let mut def = ProcessDefinition::builder("late")
        .wait_for("wait", "PT1S")
        .end("done")
        .build()
        .unwrap();
    def.steps[0].kind = StepKind::Timer {
        timer: crate::definition::TimerSpec::After(too_long.clone()),
    };
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    match events.last() {
        Some(Event::InstanceFailed { step, error }) => {
            assert_eq!(step, "wait");
            assert!(error.contains("longer than 100 years"), "{error}");
        }
        other => panic!("expected InstanceFailed, got {other:?}"),
    }

    // A due time past the last date chrono holds is refused too, not added with a panic.
    let mut end_of_time = ctx(1);
    end_of_time.now = DateTime::<Utc>::MAX_UTC - chrono::Duration::seconds(10);
    let def = ProcessDefinition::builder("late")
        .wait_for("wait", "P1D")
        .end("done")
        .build()
        .unwrap();
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        end_of_time,
    )
    .unwrap();
    assert!(
        matches!(events.last(), Some(Event::InstanceFailed { error, .. }) if error.contains("beyond the dates")),
        "{events:?}"
    );

    // A service step's timeout that no longer parses fails the instance instead of being
    // dropped without a word.
    let mut def = ProcessDefinition::builder("late")
        .service("work", "work")
        .timeout("PT1M")
        .end("done")
        .build()
        .unwrap();
    if let StepKind::Service { timeout, .. } = &mut def.steps[0].kind {
        *timeout = Some(too_long);
    }
    let events = decide(
        &compile(def.clone()),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    assert!(
        matches!(events.last(), Some(Event::InstanceFailed { error, .. }) if error.contains("longer than 100 years") && error.len() < 200),
        "{events:?}"
    );
}

#[test]
fn a_stored_duration_of_the_lax_grammar_still_runs_but_no_longer_deploys() {
    // A version deployed before the grammar was strict: parts out of order.
    let def: ProcessDefinition = serde_json::from_value(json!({
        "process": "lax",
        "steps": [
            { "id": "pause", "type": "timer", "duration": "PT1S2H", "next": "done" },
            { "id": "done", "type": "end" }
        ]
    }))
    .unwrap();
    assert!(def.validate().is_err(), "a new deploy is refused");
    let events = decide(
        &compile(def),
        &InstanceState::default(),
        &start_input(),
        ctx(1),
    )
    .unwrap();
    let due = events
        .iter()
        .find_map(|e| match e {
            Event::TimerScheduled { due_at, .. } => Some(*due_at),
            _ => None,
        })
        .expect("the timer is scheduled");
    assert_eq!(due - ctx(1).now, chrono::Duration::seconds(7201));
}

#[path = "flow_tests.rs"]
mod flow;

#[path = "scope_tests.rs"]
mod scope;

#[path = "multi_tests.rs"]
mod multi;

#[path = "events_tests.rs"]
mod events;

#[test]
fn an_instance_starts_a_trace_or_continues_the_one_it_is_given_and_its_children_inherit_it() {
    let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0abc);
    let t = Trace::new("o-1", id);
    assert_eq!(
        t.traceparent,
        "00-01900000000070008000000000000abc-8000000000000abc-01"
    );
    assert!(Trace::valid_traceparent(&t.traceparent));
    for bad in [
        "",
        "00-abc-def-01",
        "01-01900000000070008000000000000abc-8000000000000abc-01",
        "00-00000000000000000000000000000000-8000000000000abc-01",
        "00-01900000000070008000000000000abc-0000000000000000-01",
        "00-0190000000007000800000000000zabc-8000000000000abc-01",
    ] {
        assert!(!Trace::valid_traceparent(bad), "{bad}");
    }
    let def = ProcessDefinition::builder("p")
        .call("pay", "payment")
        .end("done")
        .build()
        .unwrap();
    let ctx = Context {
        instance_id: id,
        ..ctx(1)
    };
    let given = Trace {
        key: "checkout-9".into(),
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
    };
    for (trace, expected) in [(None, t.clone()), (Some(given.clone()), given)] {
        let input = Input::Start {
            business_key: "o-1".into(),
            variables: Map::new(),
            message_id: None,
            parent: None,
            start_message: None,
            trace,
        };
        let events = decide(
            &compile(def.clone()),
            &InstanceState::default(),
            &input,
            ctx,
        )
        .unwrap();
        let mut state = InstanceState::default();
        let mut child = None;
        for e in &events {
            for fx in effects(&compile(def.clone()), id, &state, e, ctx.now) {
                if let Effect::StartChild { trace, .. } = fx {
                    child = Some(trace);
                }
            }
            evolve(&mut state, e);
        }
        assert_eq!(state.trace.as_ref(), Some(&expected));
        assert_eq!(child, Some(Some(expected)), "the child continues it");
    }
}

#[test]
fn milestones_are_reached_as_their_steps_complete_and_published_on_their_topic() {
    let def = ProcessDefinition::builder("order")
        .parallel("placed", ["pay", "charge"])
        .milestone("order placed")
        .receive("pay", "PaymentReceived")
        .milestone("paid")
        .next("both")
        .service("charge", "charge")
        .milestone("charged")
        .on_error("Declined", "declined")
        .next("both")
        .join("both")
        .end("done")
        .milestone("completed")
        .end("declined")
        .build()
        .unwrap();
    let (events, s) = run(&def, &[start_with(json!({}))]);
    let reached = |events: &[Event]| -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::MilestoneReached { milestone, .. } => Some(milestone.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(reached(&events[0]), ["order placed"]);
    let job = job_at(&s, "charge");
    let inputs = vec![
        start_with(json!({})),
        Input::Message {
            message_id: "m1".into(),
            name: "PaymentReceived".into(),
            payload: json!({}),
        },
        done(job),
    ];
    let (events, s) = run(&def, &inputs);
    assert_eq!(reached(&events[1]), ["paid"]);
    assert_eq!(reached(&events[2]), ["charged", "completed"]);
    assert_eq!(s.status, Status::Completed);
    // Each is an outbox message on the milestones topic, keyed by the trace.
    let process = compile(def.clone());
    let mut state = InstanceState::default();
    let mut sent = Vec::new();
    for e in events.iter().flatten() {
        for fx in effects(&process, Uuid::nil(), &state, e, chrono::Utc::now()) {
            if let Effect::Send {
                topic,
                key,
                payload,
                ..
            } = fx
            {
                sent.push((topic, key, payload["milestone"].clone()));
            }
        }
        evolve(&mut state, e);
    }
    assert_eq!(sent.len(), 4);
    assert!(
        sent.iter()
            .all(|(t, k, _)| t == "longrun.milestones" && k == "o-1"),
        "{sent:?}"
    );
    // A join is not a milestone.
    let bad = ProcessDefinition::builder("p")
        .parallel("f", ["a", "b"])
        .send("a", "A")
        .next("j")
        .send("b", "B")
        .next("j")
        .join("j")
        .milestone("joined")
        .end("e")
        .build()
        .unwrap_err()
        .to_string();
    assert!(bad.contains("a join step is not a milestone"), "{bad}");
}
