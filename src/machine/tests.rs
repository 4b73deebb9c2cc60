use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::definition::ProcessDefinition;

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
    }
}

#[test]
fn start_runs_forward_to_the_first_wait() {
    let def = order();
    let events = decide(&def, &InstanceState::default(), &start_input(), ctx(1)).unwrap();
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
    let mut events = decide(&def, &InstanceState::default(), &start_input(), ctx(1)).unwrap();
    let state = fold(&events);
    let Some(Wait::Job { job_id, .. }) = state.waits.first().cloned() else {
        panic!("waits for a job")
    };
    let more = decide(
        &def,
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
    let events = decide(&def, &InstanceState::default(), &start_input(), ctx(1)).unwrap();
    let state = fold(&events);
    assert_eq!(
        decide(&def, &state, &start_input(), ctx(3)),
        Err(Rejection::AlreadyStarted)
    );
    let wrong_job = Input::JobCompleted {
        job_id: Uuid::from_u128(1),
        result: json!(null),
    };
    assert_eq!(
        decide(&def, &state, &wrong_job, ctx(3)),
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
        decide(&def, &state, &msg, ctx(3)),
        Err(Rejection::NotWaitingFor { .. })
    ));
    assert_eq!(
        decide(&def, &InstanceState::default(), &msg, ctx(1)),
        Err(Rejection::NotRunning("new"))
    );
}

#[test]
fn a_failed_job_raises_an_incident_to_retry_or_cancel() {
    let def = order();
    let events = decide(&def, &InstanceState::default(), &start_input(), ctx(1)).unwrap();
    let state = fold(&events);
    let Some(Wait::Job { job_id, .. }) = state.waits.first().cloned() else {
        panic!()
    };
    let more = decide(
        &def,
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
    let retry = decide(&order(), &state, &Input::Retry { variables: None }, ctx(5)).unwrap();
    let types: Vec<_> = retry.iter().map(Event::type_name).collect();
    assert_eq!(types, ["IncidentResolved", "JobRetryScheduled"]);
    // Or cancels.
    let cancel = decide(
        &order(),
        &state,
        &Input::Cancel {
            reason: "customer".into(),
        },
        ctx(5),
    )
    .unwrap();
    let mut all2 = all.clone();
    all2.extend(cancel);
    assert_eq!(fold(&all2).status, Status::Cancelled);
}

#[test]
fn events_round_trip_through_json() {
    let def = order();
    let events = decide(&def, &InstanceState::default(), &start_input(), ctx(1)).unwrap();
    for e in events {
        let text = serde_json::to_string(&e).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }
}

/// A random straight-line process of service, send and receive steps.
fn arb_definition() -> impl Strategy<Value = ProcessDefinition> {
    use crate::definition::{Output, Step};
    prop::collection::vec(0u8..4, 0..12).prop_map(|kinds| {
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
                    _ => StepKind::Timer {
                        timer: crate::definition::TimerSpec::After("PT30S".into()),
                    },
                },
                next: Some(if i + 1 < n {
                    format!("s{}", i + 1)
                } else {
                    "end".into()
                }),
                boundary: if matches!(k, 0 | 2) {
                    vec![crate::definition::Boundary {
                        on: crate::definition::BoundaryEvent::Timer(
                            crate::definition::TimerSpec::After("P7D".into()),
                        ),
                        interrupting: false,
                        next: None,
                        send: Some(("Remind".into(), None)),
                    }]
                } else {
                    Vec::new()
                },
                compensate: None,
            })
            .collect();
        steps.push(Step {
            id: "end".into(),
            kind: StepKind::End,
            next: None,
            boundary: Vec::new(),
            compensate: None,
        });
        let def = ProcessDefinition {
            process: "p".into(),
            start: None,
            retry: None,
            variables: Default::default(),
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
    };
    for round in 0..100 {
        let new = decide(def, &state, &input, ctx(events.len() as i64 + 1)).unwrap();
        // Deciding again on the same state gives the same events.
        assert_eq!(
            new,
            decide(def, &state, &input, ctx(events.len() as i64 + 1)).unwrap()
        );
        for e in &new {
            evolve(&mut state, e);
        }
        events.extend(new);
        input = match &state.waits.first().cloned() {
            None => break,
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
        let waits = def.steps.iter().filter(|s| matches!(s.kind, StepKind::Service { .. } | StepKind::Receive { .. } | StepKind::Timer { .. })).count();
        let boundaries: usize = def.steps.iter().map(|s| s.boundary.len()).sum();
        // Each boundary timer is scheduled as its step is entered and cancelled as it ends.
        prop_assert_eq!(events.len(), 1 + def.steps.len() + waits + 2 * boundaries);
        prop_assert!(state.timers.is_empty(), "no timer outlives its wait");
        // Ids derived from the stream position are unique.
        let mut ids: Vec<Uuid> = events.iter().filter_map(|e| match e {
            Event::JobCreated { job_id, .. } => Some(*job_id),
            Event::MessageSent { message_id, .. } => Some(*message_id),
            Event::TimerScheduled { timer_id, .. } => Some(*timer_id),
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
