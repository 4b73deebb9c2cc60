use super::*;
use crate::definition::{compile, ProcessDefinition};
use crate::machine::{ActiveTimer, Incident, MessageKind, Parent};
use serde_json::json;

fn process() -> Process {
    compile(
        ProcessDefinition::builder("p")
            .service("work", "do_work")
            .or_message("Stop", "done")
            .service("plain", "do_plain")
            .receive("wait", "Go")
            .end("done")
            .build()
            .unwrap(),
    )
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn at(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
}

fn vars() -> Map<String, Value> {
    json!({"orderId": "o-1"}).as_object().unwrap().clone()
}

fn state(waits: Vec<Wait>) -> InstanceState {
    InstanceState {
        status: Status::Running,
        business_key: "bk".into(),
        variables: vars(),
        waits,
        ..InstanceState::default()
    }
}

fn job(step: &str, n: u128, attempt: u32) -> Wait {
    Wait::Job {
        step: step.into(),
        job_id: id(n),
        handler: format!("h_{step}"),
        attempt,
    }
}

fn fx(before: &InstanceState, event: Event) -> Vec<Effect> {
    effects(&process(), id(1), before, &event, at(0))
}

/// The end of the wait at `step`, in a state with business key `bk` and no message or
/// gateway wait there: its subscriptions may be keyless or under the business key.
fn end(step: &str, listens: bool) -> Effect {
    Effect::EndWait {
        step: step.into(),
        listens,
        keys: if listens {
            vec![String::new(), "bk".into()]
        } else {
            Vec::new()
        },
    }
}

/// The end of a message wait under `key`: its subscriptions may be under that key too.
fn end_keyed(step: &str, key: &str) -> Effect {
    Effect::EndWait {
        step: step.into(),
        listens: true,
        keys: vec![String::new(), "bk".into(), key.into()],
    }
}

#[test]
fn a_new_job_carries_the_variables_and_may_be_leased() {
    let e = fx(
        &state(vec![]),
        Event::JobCreated {
            step: "work".into(),
            job_id: id(9),
            handler: "do_work".into(),
        },
    );
    assert_eq!(
        e,
        vec![Effect::Job {
            job_id: id(9),
            step: "work".into(),
            handler: "do_work".into(),
            variables: vars(),
            rearmed: None,
        }]
    );
}

#[test]
fn a_retry_rearms_the_job_with_its_handler_attempt_and_time() {
    let e = fx(
        &state(vec![job("work", 9, 2)]),
        Event::JobRetryScheduled {
            step: "work".into(),
            job_id: id(9),
            attempt: 2,
            run_at: at(30),
        },
    );
    assert_eq!(
        e,
        vec![Effect::Job {
            job_id: id(9),
            step: "work".into(),
            handler: "h_work".into(),
            variables: vars(),
            rearmed: Some((2, at(30))),
        }]
    );
}

#[test]
fn a_sent_message_goes_to_its_recipient_else_to_its_name() {
    let sent = |to: Option<&str>| Event::MessageSent {
        step: "s".into(),
        message_id: id(5),
        name: "RetrievePayment".into(),
        kind: MessageKind::Command,
        to: to.map(str::to_string),
        key: "o-1".into(),
        payload: json!({"a": 1}),
    };
    for (to, topic) in [(Some("payment"), "payment"), (None, "RetrievePayment")] {
        assert_eq!(
            fx(&state(vec![]), sent(to)),
            vec![Effect::Send {
                message_id: id(5),
                topic: topic.into(),
                kind: "command",
                name: "RetrievePayment".into(),
                key: "o-1".into(),
                payload: json!({"a": 1}),
                trace: None,
            }]
        );
    }
}

#[test]
fn awaited_messages_subscribe_and_their_end_unsubscribes() {
    for event in [
        Event::MessageAwaited {
            step: "wait".into(),
            name: "Go".into(),
            key: "k".into(),
        },
        Event::BoundaryMessageAwaited {
            step: "work".into(),
            name: "Stop".into(),
            key: "k".into(),
        },
    ] {
        let e = fx(&state(vec![]), event.clone());
        assert!(
            matches!(&e[..], [Effect::Subscribe { key, .. }] if key == "k"),
            "{e:?}"
        );
    }
    let correlated = Event::MessageCorrelated {
        step: "wait".into(),
        message_id: "m".into(),
        name: "Go".into(),
        set: Map::new(),
    };
    assert_eq!(fx(&state(vec![]), correlated), vec![end("wait", true)]);
}

#[test]
fn a_finished_job_ends_its_wait_listening_only_where_boundary_messages_are() {
    let done = |step: &str| Event::JobCompleted {
        step: step.into(),
        job_id: id(9),
        set: Map::new(),
    };
    assert_eq!(fx(&state(vec![]), done("work")), vec![end("work", true)]);
    assert_eq!(fx(&state(vec![]), done("plain")), vec![end("plain", false)]);
    let timed_out = Event::JobTimedOut {
        step: "plain".into(),
        job_id: id(9),
        error: "late".into(),
    };
    assert_eq!(
        fx(&state(vec![]), timed_out),
        vec![Effect::WithdrawJob { job_id: id(9) }, end("plain", false)]
    );
}

#[test]
fn timers_are_kept_and_cancelled() {
    let scheduled = Event::TimerScheduled {
        step: "work".into(),
        timer_id: id(3),
        kind: TimerKind::Timeout,
        due_at: at(60),
        remaining: 0,
    };
    assert_eq!(
        fx(&state(vec![]), scheduled),
        vec![Effect::Timer {
            timer_id: id(3),
            step: "work".into(),
            kind: TimerKind::Timeout,
            due_at: at(60),
        }]
    );
    let cancelled = Event::TimerCancelled {
        step: "work".into(),
        timer_id: id(3),
    };
    assert_eq!(
        fx(&state(vec![]), cancelled),
        vec![Effect::CancelTimer { timer_id: id(3) }]
    );
}

#[test]
fn an_interrupt_withdraws_the_job_or_cancels_the_child_of_the_wait() {
    let interrupt = |step: &str| Event::WaitInterrupted {
        step: step.into(),
        by: "timer".into(),
    };
    assert_eq!(
        fx(&state(vec![job("plain", 9, 1)]), interrupt("plain")),
        vec![end("plain", false), Effect::WithdrawJob { job_id: id(9) }]
    );
    let child = Wait::Child {
        step: "plain".into(),
        child_id: id(4),
        process: "c".into(),
    };
    assert_eq!(
        fx(&state(vec![child]), interrupt("plain")),
        vec![
            end("plain", false),
            Effect::CancelChild {
                child_id: id(4),
                reason: format!("its parent {}: timer", id(1)),
            }
        ]
    );
    let message = Wait::Message {
        step: "wait".into(),
        name: "Go".into(),
        key: "k".into(),
    };
    assert_eq!(
        fx(&state(vec![message]), interrupt("wait")),
        vec![end_keyed("wait", "k")]
    );
}

#[test]
fn a_call_starts_the_child_with_the_parents_business_key() {
    let e = fx(
        &state(vec![]),
        Event::ChildStarted {
            step: "call".into(),
            child_id: id(4),
            process: "payment".into(),
            variables: vars(),
        },
    );
    assert_eq!(
        e,
        vec![Effect::StartChild {
            child_id: id(4),
            step: "call".into(),
            process: "payment".into(),
            business_key: "bk".into(),
            variables: vars(),
            trace: None,
        }]
    );
}

fn paused_state() -> InstanceState {
    let mut s = state(vec![
        job("work", 9, 2),
        job("plain", 8, 1),
        Wait::Message {
            step: "wait".into(),
            name: "Go".into(),
            key: "k".into(),
        },
    ]);
    s.timers.push(ActiveTimer {
        timer_id: id(3),
        step: "work".into(),
        kind: TimerKind::Timeout,
        due_at: at(60),
        remaining: 0,
    });
    s.incidents.push(Incident {
        step: "plain".into(),
        error: "no".into(),
        attempts: 1,
        at: at(0),
    });
    s
}

#[test]
fn a_pause_withdraws_jobs_subscriptions_and_timers() {
    let e = fx(&paused_state(), Event::InstancePaused { by: "op".into() });
    assert_eq!(
        e,
        vec![
            Effect::WithdrawJob { job_id: id(9) },
            end("work", true),
            Effect::WithdrawJob { job_id: id(8) },
            end("plain", true),
            end_keyed("wait", "k"),
            Effect::CancelTimer { timer_id: id(3) },
        ]
    );
}

#[test]
fn a_resume_puts_back_jobs_without_incidents_subscriptions_and_timers() {
    let mut s = paused_state();
    s.paused = true;
    let e = fx(&s, Event::InstanceResumed { by: "op".into() });
    assert_eq!(
        e,
        vec![
            Effect::Job {
                job_id: id(9),
                step: "work".into(),
                handler: "h_work".into(),
                variables: vars(),
                rearmed: Some((2, at(0))),
            },
            Effect::Subscribe {
                step: "work".into(),
                name: "Stop".into(),
                key: "bk".into(),
            },
            Effect::Subscribe {
                step: "wait".into(),
                name: "Go".into(),
                key: "k".into(),
            },
            Effect::Timer {
                timer_id: id(3),
                step: "work".into(),
                kind: TimerKind::Timeout,
                due_at: at(60),
            },
        ]
    );
}

#[test]
fn an_end_withdraws_what_is_left_and_tells_the_parent() {
    let mut s = state(vec![
        job("plain", 8, 1),
        Wait::Child {
            step: "work".into(),
            child_id: id(4),
            process: "c".into(),
        },
    ]);
    s.parent = Some(Parent {
        instance_id: id(2),
        step: "call".into(),
    });
    for (event, status) in [
        (
            Event::InstanceCompleted {
                step: "done".into(),
            },
            Status::Completed,
        ),
        (
            Event::InstanceFailed {
                step: "x".into(),
                error: "e".into(),
            },
            Status::Failed,
        ),
        (
            Event::InstanceCancelled {
                reason: "r".into(),
                by: String::new(),
            },
            Status::Cancelled,
        ),
    ] {
        assert_eq!(
            fx(&s, event),
            vec![
                Effect::WithdrawJob { job_id: id(8) },
                end("plain", true),
                Effect::CancelChild {
                    child_id: id(4),
                    reason: format!("its parent {} ended", id(1)),
                },
                end("work", true),
                Effect::NotifyParent {
                    parent: id(2),
                    status,
                    variables: vars(),
                    code: None,
                },
            ]
        );
    }
    // Without a parent, nobody is told.
    s.parent = None;
    let e = fx(
        &s,
        Event::InstanceCompleted {
            step: "done".into(),
        },
    );
    assert!(!e.iter().any(|e| matches!(e, Effect::NotifyParent { .. })));
}

#[test]
fn events_inside_the_stream_imply_nothing_outside_it() {
    for event in [
        Event::StepEntered {
            step: "work".into(),
            pass: 2,
        },
        Event::GatewayDecided {
            step: "g".into(),
            condition: None,
            next: "work".into(),
        },
    ] {
        assert!(fx(&state(vec![]), event).is_empty());
    }
}

#[test]
fn a_migration_moves_jobs_and_timers_and_subscribes_in_the_new_version() {
    let mut before = state(vec![job("old_work", 2, 1)]);
    before.timers.push(ActiveTimer {
        timer_id: id(3),
        step: "old_work".into(),
        kind: TimerKind::Timeout,
        due_at: at(60),
        remaining: 0,
    });
    let migrated = Event::Migrated {
        from_version: 1,
        to_version: 2,
        steps: [("old_work".to_string(), "work".to_string())].into(),
        handlers: [("work".to_string(), "h_new".to_string())].into(),
        set: Map::new(),
        by: "ops".into(),
    };
    assert_eq!(
        fx(&before, migrated.clone()),
        vec![
            Effect::MoveJob {
                job_id: id(2),
                step: "work".into(),
                handler: "h_new".into(),
            },
            Effect::MoveTimer {
                timer_id: id(3),
                step: "work".into(),
            },
            end("old_work", true),
            // `work` in the new version has a boundary message.
            Effect::Subscribe {
                step: "work".into(),
                name: "Stop".into(),
                key: "bk".into(),
            },
        ]
    );
    // Paused: its timers and subscriptions are withdrawn already; only the job row moves.
    before.paused = true;
    assert_eq!(
        fx(&before, migrated),
        vec![Effect::MoveJob {
            job_id: id(2),
            step: "work".into(),
            handler: "h_new".into(),
        }]
    );
}
