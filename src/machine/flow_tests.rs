//! Gateways, parallel branches, loops and call steps: the routes an instance takes.

use super::*;

#[test]
fn an_exclusive_gateway_takes_the_first_route_that_holds_else_the_default() {
    let def = ProcessDefinition::builder("route")
        .exclusive("check")
        .when("amount > 1000 && !vip", "review")
        .when("amount > 1000", "fast")
        .otherwise("normal")
        .send("review", "Review")
        .end("reviewed")
        .send("fast", "Fast")
        .end("fasted")
        .send("normal", "Normal")
        .end("normaled")
        .build()
        .unwrap();
    for (vars, expected) in [
        (json!({"amount": 5000, "vip": false}), "review"),
        (json!({"amount": 5000, "vip": true}), "fast"),
        (json!({"amount": 10, "vip": true}), "normal"),
    ] {
        let (events, state) = run(&def, &[start_with(vars)]);
        assert_eq!(state.status, Status::Completed);
        let decided = events[0]
            .iter()
            .find_map(|e| match e {
                Event::GatewayDecided { next, .. } => Some(next.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(decided, expected);
    }
    // A condition that cannot be evaluated fails the instance, saying why.
    let (_, state) = run(&def, &[start_with(json!({"amount": "lots"}))]);
    assert_eq!(state.status, Status::Failed);
    assert!(state.error.unwrap().contains("amount > 1000"));

    let no_default = ProcessDefinition::builder("route")
        .exclusive("check")
        .when("amount > 1000", "big")
        .end("big")
        .build()
        .unwrap();
    let (_, state) = run(&no_default, &[start_with(json!({"amount": 1}))]);
    assert_eq!(state.status, Status::Failed);
    assert!(state.error.unwrap().contains("no default"));
}

pub(super) fn fork_join() -> ProcessDefinition {
    ProcessDefinition::builder("fj")
        .parallel("fork", ["pay", "fetch"])
        .service("pay", "pay")
        .output("payment")
        .next("join")
        .service("fetch", "fetch")
        .output("goods")
        .next("join")
        .join("join")
        .service("ship", "ship")
        .end("done")
        .build()
        .unwrap()
}

#[test]
fn a_parallel_fork_runs_both_branches_and_the_join_goes_on_once_both_arrived() {
    let def = fork_join();
    let (events, state) = run(&def, &[start_with(json!({}))]);
    assert!(
        matches!(&events[0][1], Event::ParallelForked { branches, .. } if branches == &["pay", "fetch"])
    );
    assert_eq!(state.waits.len(), 2);
    let (pay, fetch) = (job_at(&state, "pay"), job_at(&state, "fetch"));

    // Either order: the first arrival waits, the second goes on, exactly once.
    for order in [[pay, fetch], [fetch, pay]] {
        let (events, state) = run(
            &def,
            &[start_with(json!({})), done(order[0]), done(order[1])],
        );
        assert!(events[1].iter().any(|e| matches!(
            e,
            Event::JoinArrived {
                arrived: 1,
                expected: 2,
                ..
            }
        )));
        assert!(!events[1]
            .iter()
            .any(|e| matches!(e, Event::JobCreated { step, .. } if step == "ship")));
        assert_eq!(
            events[2]
                .iter()
                .filter(|e| matches!(e, Event::JobCreated { step, .. } if step == "ship"))
                .count(),
            1
        );
        assert!(state.joins.is_empty());
        let ship = job_at(&state, "ship");
        let mut state = state;
        let seq = events.iter().map(Vec::len).sum::<usize>() as i64 + 1;
        for e in decide(&compile(def.clone()), &state.clone(), &done(ship), ctx(seq)).unwrap() {
            evolve(&mut state, &e);
        }
        assert_eq!(state.status, Status::Completed);
    }
    // A job of a branch that already arrived is refused.
    let (_, state) = run(&def, &[start_with(json!({})), done(pay)]);
    assert!(decide(&compile(def.clone()), &state, &done(pay), ctx(20)).is_err());
}

#[test]
fn a_branch_end_leaves_the_others_running_and_the_last_end_completes() {
    let def = ProcessDefinition::builder("ends")
        .parallel("fork", ["a", "b"])
        .service("a", "a")
        .end("a_done")
        .service("b", "b")
        .end("b_done")
        .build()
        .unwrap();
    let (_, state) = run(&def, &[start_with(json!({}))]);
    let (a, b) = (job_at(&state, "a"), job_at(&state, "b"));
    let (events, state) = run(&def, &[start_with(json!({})), done(a), done(b)]);
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::BranchEnded { step } if step == "a_done")));
    assert!(events[2]
        .iter()
        .any(|e| matches!(e, Event::InstanceCompleted { step } if step == "b_done")));
    assert_eq!(state.status, Status::Completed);
}

fn gateway() -> ProcessDefinition {
    ProcessDefinition::builder("gw")
        .send("charge", "RetrievePayment")
        .event_gateway("outcome")
        .on_message("PaymentReceived", "paid")
        .output("payment")
        .on_message("PaymentFailed", "failed")
        .on_timer("PT1H", "timed_out")
        .end("paid")
        .end("failed")
        .end("timed_out")
        .build()
        .unwrap()
}

#[test]
fn an_event_gateway_takes_the_first_event_and_withdraws_the_others() {
    let def = gateway();
    let (events, state) = run(&def, &[start_with(json!({}))]);
    assert!(events[0]
        .iter()
        .any(|e| matches!(e, Event::GatewayEntered { .. })));
    assert_eq!(
        state.awaited_messages(&compile(def.clone())),
        vec![
            ("PaymentReceived".to_string(), "o-1".to_string()),
            ("PaymentFailed".to_string(), "o-1".to_string())
        ]
    );
    let timer = state.timers[0].timer_id;
    let message = Input::Message {
        message_id: "m1".into(),
        name: "PaymentReceived".into(),
        payload: json!({"amount": 3}),
    };
    // The message first: the timer is cancelled and the message's path taken.
    let (events, state) = run(&def, &[start_with(json!({})), message.clone()]);
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::TimerCancelled { .. })));
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::InstanceCompleted { step } if step == "paid")));
    assert_eq!(state.variables["payment"], json!({"amount": 3}));
    // The timer first: the message is no longer awaited.
    let (events, state) = run(
        &def,
        &[start_with(json!({})), Input::TimerFired { timer_id: timer }],
    );
    assert!(events[1]
        .iter()
        .any(|e| matches!(e, Event::InstanceCompleted { step } if step == "timed_out")));
    assert!(state.awaited_messages(&compile(def.clone())).is_empty());
    let n = events.iter().map(Vec::len).sum::<usize>() as i64;
    assert!(decide(&compile(def.clone()), &state, &message, ctx(n + 1)).is_err());
}

#[test]
fn a_loop_counts_its_passes() {
    let def = ProcessDefinition::builder("again")
        .service("try", "try")
        .exclusive("ok")
        .when("done == true", "end")
        .otherwise("try")
        .end("end")
        .build()
        .unwrap();
    let mut state = InstanceState::default();
    let mut seq = 1;
    let mut input = start_with(json!({}));
    let mut passes = Vec::new();
    for round in 0..3 {
        let events = decide(&compile(def.clone()), &state, &input, ctx(seq)).unwrap();
        seq += events.len() as i64;
        for e in &events {
            if let Event::StepEntered { step, pass } = e {
                if step == "try" {
                    passes.push(*pass);
                }
            }
            evolve(&mut state, e);
        }
        if state.status != Status::Running {
            break;
        }
        input = Input::JobCompleted {
            job_id: job_at(&state, "try"),
            result: json!({ "done": round == 1 }),
        };
    }
    assert_eq!(passes, vec![1, 2]);
    assert_eq!(state.status, Status::Completed);
}

#[test]
fn a_call_step_waits_for_its_child_and_maps_its_result() {
    let def = ProcessDefinition::builder("parent")
        .call("check", "credit_check")
        .payload(["amount"])
        .output("credit")
        .end("done")
        .build()
        .unwrap();
    let (events, state) = run(&def, &[start_with(json!({"amount": 5, "secret": 1}))]);
    let child_id = match &events[0][1] {
        Event::ChildStarted {
            child_id,
            process,
            variables,
            ..
        } => {
            assert_eq!(process, "credit_check");
            assert_eq!(Value::Object(variables.clone()), json!({"amount": 5}));
            *child_id
        }
        other => panic!("{other:?}"),
    };
    let ended = |status| Input::ChildEnded {
        child_id,
        status,
        variables: json!({"score": 700}).as_object().unwrap().clone(),
        code: None,
    };
    let mut ok = state.clone();
    for e in decide(
        &compile(def.clone()),
        &state,
        &ended(Status::Completed),
        ctx(3),
    )
    .unwrap()
    {
        evolve(&mut ok, &e);
    }
    assert_eq!(ok.status, Status::Completed);
    assert_eq!(ok.variables["credit"], json!({"score": 700}));
    let mut failed = state.clone();
    for e in decide(
        &compile(def.clone()),
        &state,
        &ended(Status::Cancelled),
        ctx(3),
    )
    .unwrap()
    {
        evolve(&mut failed, &e);
    }
    assert_eq!(failed.status, Status::Failed);
    // Cancelling the parent interrupts the child wait (the store cancels the child).
    let events = decide(
        &compile(def.clone()),
        &state,
        &Input::Cancel {
            reason: "no".into(),
            by: String::new(),
        },
        ctx(3),
    )
    .unwrap();
    assert!(matches!(&events[0], Event::WaitInterrupted { step, .. } if step == "check"));
}
