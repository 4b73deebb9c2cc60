//! Multi-instance steps: parallel and sequential elements, each seeing its element, results
//! collected in order, an early completion withdrawing the rest, a business error ending all.

use super::*;
use crate::definition::{MultiInstance, UserTask};

fn fetch(multi: MultiInstance) -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .service("fetch", "fetch_line")
        .for_each(multi)
        .on_error("OutOfStock", "sorry")
        .end("done")
        .end("sorry")
        .build()
        .unwrap()
}

fn lines() -> Input {
    start_with(json!({"lines": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}))
}

fn jobs(state: &InstanceState) -> Vec<(String, Uuid)> {
    state
        .waits
        .iter()
        .filter_map(|w| match w {
            Wait::Job { step, job_id, .. } => Some((step.clone(), *job_id)),
            _ => None,
        })
        .collect()
}

#[test]
fn parallel_elements_run_at_once_and_collect_their_results_in_order() {
    let def = fetch(
        MultiInstance::over("lines")
            .element("line")
            .collect("fetched", Some("sku")),
    );
    let (events, s) = run(&def, &[lines()]);
    assert!(matches!(&events[0][1], Event::MultiInstanceStarted { items, .. } if items.len() == 3));
    let running = jobs(&s);
    assert_eq!(
        running.iter().map(|j| j.0.as_str()).collect::<Vec<_>>(),
        ["fetch#0", "fetch#1", "fetch#2"]
    );
    // Each element's job sees its element and its counter, not the others'.
    let p = compile(def.clone());
    let vars = s.element_variables(&p, "fetch#1");
    assert_eq!(vars["line"], json!({"sku": "b"}));
    assert_eq!(vars["loop_counter"], json!(2));
    // They complete out of order; the results keep the elements' order.
    let mut inputs = vec![lines()];
    for i in [2, 0, 1] {
        inputs.push(Input::JobCompleted {
            job_id: running[i].1,
            result: json!({"sku": format!("got-{i}")}),
        });
    }
    let (events, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.variables["fetched"], json!(["got-0", "got-1", "got-2"]));
    assert!(s.multi.is_empty());
    assert!(events[1]
        .iter()
        .all(|e| !matches!(e, Event::MultiInstanceCompleted { .. })));
    assert_eq!(fold(&events.concat()), s);
}

#[test]
fn sequential_elements_run_one_after_another() {
    let def = fetch(
        MultiInstance::over("lines")
            .sequential()
            .collect("all", None),
    );
    let mut inputs = vec![lines()];
    for i in 0..3 {
        let s = run(&def, &inputs).1;
        let running = jobs(&s);
        assert_eq!(running.len(), 1);
        assert_eq!(running[0].0, format!("fetch#{i}"));
        inputs.push(Input::JobCompleted {
            job_id: running[0].1,
            result: json!({"n": i}),
        });
    }
    let s = run(&def, &inputs).1;
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.variables["all"], json!([{"n": 0}, {"n": 1}, {"n": 2}]));
}

#[test]
fn a_completion_condition_withdraws_the_elements_still_running() {
    let def = fetch(MultiInstance::over("lines").until("completed >= 2"));
    let s = run(&def, &[lines()]).1;
    let running = jobs(&s);
    let inputs = vec![lines(), done(running[0].1), done(running[1].1)];
    let (events, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert!(events[2]
        .iter()
        .any(|e| matches!(e, Event::WaitInterrupted { step, .. } if step == "fetch#2")));
}

#[test]
fn a_routed_business_error_of_one_element_ends_them_all() {
    let def = fetch(MultiInstance::over("lines"));
    let s = run(&def, &[lines()]).1;
    let running = jobs(&s);
    let inputs = vec![
        lines(),
        Input::JobFailed {
            job_id: running[1].1,
            error: "none left".into(),
            code: Some("OutOfStock".into()),
        },
    ];
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert!(s.waits.is_empty() && s.multi.is_empty());
}

#[test]
fn an_empty_list_passes_and_a_missing_one_fails_the_instance() {
    let def = fetch(MultiInstance::over("lines").collect("fetched", None));
    let (_, s) = run(&def, &[start_with(json!({"lines": []}))]);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.variables["fetched"], json!([]));
    let (_, s) = run(&def, &[start_with(json!({}))]);
    assert_eq!(s.status, Status::Failed);
    assert!(
        s.error.as_deref().unwrap().contains("holds no list"),
        "{s:?}"
    );
    let many: Vec<Value> = (0..=crate::definition::MAX_ELEMENTS)
        .map(|i| json!(i))
        .collect();
    let (_, s) = run(&def, &[start_with(json!({"lines": many}))]);
    assert!(
        s.error.as_deref().unwrap().contains("at most 1000"),
        "{s:?}"
    );
}

#[test]
fn user_task_elements_are_offered_to_their_elements_people() {
    let def = ProcessDefinition::builder("approvals")
        .user_task("approve", UserTask::new().assignee("=approver"))
        .for_each(
            MultiInstance::over("approvers")
                .element("approver")
                .collect("votes", Some("ok")),
        )
        .end("done")
        .build()
        .unwrap();
    let (_, s) = run(&def, &[start_with(json!({"approvers": ["ann", "bob"]}))]);
    let tasks: Vec<(String, Option<String>, Uuid)> = s
        .waits
        .iter()
        .filter_map(|w| match w {
            Wait::Task {
                step,
                task,
                task_id,
            } => Some((step.clone(), task.assignee.clone(), *task_id)),
            _ => None,
        })
        .collect();
    assert_eq!(tasks.len(), 2);
    assert_eq!(tasks[0].1.as_deref(), Some("ann"));
    assert_eq!(tasks[1].1.as_deref(), Some("bob"));
    let complete = |task_id: Uuid, by: &str, ok: bool| Input::Task {
        task_id,
        action: TaskAction::Complete {
            variables: json!({"ok": ok}).as_object().unwrap().clone(),
            force: false,
        },
        by: by.into(),
    };
    let inputs = vec![
        start_with(json!({"approvers": ["ann", "bob"]})),
        complete(tasks[1].2, "bob", false),
        complete(tasks[0].2, "ann", true),
    ];
    let (_, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed);
    assert_eq!(s.variables["votes"], json!([true, false]));
}

#[test]
fn multi_instance_settings_are_checked_and_round_trip_through_json() {
    let def = fetch(
        MultiInstance::over("lines")
            .element("line")
            .sequential()
            .collect("fetched", Some("sku"))
            .until("completed > 1"),
    );
    let json = def.to_json();
    assert!(json.contains("\"multi\""), "{json}");
    assert_eq!(ProcessDefinition::from_json(&json).unwrap(), def);
    let err = ProcessDefinition::builder("p")
        .wait_for("s", "PT1H")
        .for_each(MultiInstance::over("bad path!").until("(("))
        .end("done")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("steps[0].multi: a timer step does not run per element"),
        "{err}"
    );
    assert!(err.contains("steps[0].multi.collection"), "{err}");
    assert!(err.contains("steps[0].multi.completion"), "{err}");
}

#[test]
fn the_steps_boundary_events_belong_to_all_its_elements() {
    use crate::definition::Reassign;
    let def = ProcessDefinition::builder("approvals")
        .user_task("approve", UserTask::new().assignee("=approver"))
        .for_each(MultiInstance::over("approvers").element("approver"))
        .escalate(
            crate::definition::TimerSpec::After("P1D".into()),
            Reassign {
                assignee: Some("boss".into()),
                ..Default::default()
            },
        )
        .timeout_after("P3D", "too_late")
        .or_message("Withdrawn", "too_late")
        .end("done")
        .end("too_late")
        .build()
        .unwrap();
    let start = start_with(json!({"approvers": ["ann", "bob"]}));
    let (_, s) = run(&def, std::slice::from_ref(&start));
    // One timer per boundary event of the step, none per element; the message once.
    assert_eq!(s.timers.len(), 2, "{:?}", s.timers);
    assert!(s.timers.iter().all(|t| t.step == "approve"));
    let p = compile(def.clone());
    assert_eq!(
        s.awaited_messages(&p),
        [("Withdrawn".to_string(), "o-1".to_string())]
    );
    // The escalation gives every element's task to the boss.
    let escalation = s
        .timers
        .iter()
        .find(|t| t.due_at < s.timers.iter().map(|t| t.due_at).max().unwrap())
        .unwrap()
        .timer_id;
    let (_, after) = run(
        &def,
        &[
            start.clone(),
            Input::TimerFired {
                timer_id: escalation,
            },
        ],
    );
    let holders: Vec<Option<String>> = after
        .waits
        .iter()
        .filter_map(|w| match w {
            Wait::Task { task, .. } => Some(task.assignee.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(holders, [Some("boss".into()), Some("boss".into())]);
    // The interrupting timer ends both elements and the step.
    let deadline = s.timers.iter().max_by_key(|t| t.due_at).unwrap().timer_id;
    let (events, done) = run(&def, &[start, Input::TimerFired { timer_id: deadline }]);
    assert_eq!(done.status, Status::Completed);
    assert!(done.multi.is_empty() && done.timers.is_empty());
    let interrupted = events[1]
        .iter()
        .filter(|e| matches!(e, Event::WaitInterrupted { .. }))
        .count();
    assert_eq!(interrupted, 3, "two elements and the step");
}

/// Each line is picked, then checked: an exclusive gateway over the element decides.
fn per_line(multi: MultiInstance) -> ProcessDefinition {
    ProcessDefinition::builder("order")
        .subprocess("line_work", |b| {
            b.service("pick", "pick")
                .exclusive("fragile")
                .when("line.fragile == true", "wrap")
                .otherwise("line_done")
                .service("wrap", "wrap")
                .next("line_done")
                .end("line_done")
        })
        .for_each(multi)
        .on_error("Broken", "broken")
        .end("done")
        .end("broken")
        .build()
        .unwrap()
}

fn fragile_lines() -> Input {
    start_with(json!({"lines": [{"sku": "a", "fragile": true}, {"sku": "b", "fragile": false}]}))
}

#[test]
fn a_multi_instance_subprocess_runs_its_steps_once_per_element() {
    let def = per_line(
        MultiInstance::over("lines")
            .element("line")
            .collect("done_lines", Some("sku")),
    );
    let s = run(&def, &[fragile_lines()]).1;
    // Two elements, each inside its own scope, each picking.
    assert!(matches!(s.wait_at("line_work#0"), Some(Wait::Scope { .. })));
    assert!(matches!(s.wait_at("line_work#1"), Some(Wait::Scope { .. })));
    let p = compile(def.clone());
    assert_eq!(s.element_variables(&p, "pick#1")["line"]["sku"], "b");
    let mut inputs = vec![fragile_lines()];
    inputs.push(Input::JobCompleted {
        job_id: job_at(&s, "pick#0"),
        result: json!({"sku": "a"}),
    });
    inputs.push(Input::JobCompleted {
        job_id: job_at(&s, "pick#1"),
        result: json!({"sku": "b"}),
    });
    let s = run(&def, &inputs).1;
    // The fragile line is wrapped (its gateway read its own element); the other is done.
    assert!(matches!(s.wait_at("wrap#0"), Some(Wait::Job { .. })));
    assert!(s.wait_at("wrap#1").is_none() && s.wait_at("line_work#1").is_none());
    inputs.push(Input::JobCompleted {
        job_id: job_at(&s, "wrap#0"),
        result: json!({"sku": "a"}),
    });
    let (events, s) = run(&def, &inputs);
    assert_eq!(s.status, Status::Completed, "{:?}", events.last());
    assert_eq!(s.variables["done_lines"], json!(["a", "b"]));
    assert_eq!(fold(&events.concat()), s);
}

#[test]
fn a_sequential_multi_instance_subprocess_runs_one_element_after_another() {
    let def = per_line(MultiInstance::over("lines").element("line").sequential());
    let s = run(&def, &[fragile_lines()]).1;
    assert!(s.wait_at("pick#0").is_some() && s.wait_at("pick#1").is_none());
    let mut inputs = vec![fragile_lines(), done(job_at(&s, "pick#0"))];
    let s = run(&def, &inputs).1;
    inputs.push(done(job_at(&s, "wrap#0")));
    let s = run(&def, &inputs).1;
    assert!(s.wait_at("pick#1").is_some(), "{:?}", s.waits);
    inputs.push(done(job_at(&s, "pick#1")));
    let s = run(&def, &inputs).1;
    assert_eq!(s.status, Status::Completed);
}

#[test]
fn an_element_s_routed_error_ends_the_whole_multi_instance_subprocess() {
    let def = per_line(MultiInstance::over("lines").element("line"));
    let s = run(&def, &[fragile_lines()]).1;
    let (_, s) = run(
        &def,
        &[
            fragile_lines(),
            Input::JobFailed {
                job_id: job_at(&s, "pick#1"),
                error: "dropped it".into(),
                code: Some("Broken".into()),
            },
        ],
    );
    assert_eq!(s.status, Status::Completed);
    assert!(s.waits.is_empty() && s.multi.is_empty(), "{s:?}");
    // Nothing inside may run per element again.
    let e = ProcessDefinition::builder("p")
        .subprocess("outer", |b| {
            b.service("x", "x")
                .for_each(MultiInstance::over("ys"))
                .end("e")
        })
        .for_each(MultiInstance::over("xs"))
        .end("done")
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("inside the multi-instance subprocess \"outer\""),
        "{e}"
    );
}

#[test]
fn a_send_inside_an_element_carries_the_element() {
    let def = ProcessDefinition::builder("order")
        .subprocess("per_line", |b| {
            b.send("ask", "FetchLine")
                .key("line.sku")
                .payload(["line", "loop_counter"])
                .end("asked")
        })
        .for_each(MultiInstance::over("lines").element("line"))
        .end("done")
        .build()
        .unwrap();
    let (events, s) = run(&def, &[fragile_lines()]);
    assert_eq!(s.status, Status::Completed);
    let sent: Vec<(String, Value)> = events[0]
        .iter()
        .filter_map(|e| match e {
            Event::MessageSent { key, payload, .. } => Some((key.clone(), payload.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].0, "a");
    assert_eq!(sent[1].0, "b");
    assert_eq!(sent[1].1["loop_counter"], 2);
}

#[test]
fn a_multi_instance_send_sends_once_per_element_and_goes_on() {
    for sequential in [false, true] {
        let multi = MultiInstance::over("lines").element("line");
        let def = ProcessDefinition::builder("order")
            .send("fetch", "FetchLine")
            .to("inventory")
            .for_each(if sequential {
                multi.sequential()
            } else {
                multi
            })
            .receive("fetched", "Fetched")
            .end("done")
            .build()
            .unwrap();
        let (events, s) = run(&def, &[lines()]);
        let sent: Vec<(String, Value)> = events[0]
            .iter()
            .filter_map(|e| match e {
                Event::MessageSent { step, payload, .. } => {
                    Some((step.clone(), payload["line"]["sku"].clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            sent,
            [
                ("fetch#0".to_string(), json!("a")),
                ("fetch#1".to_string(), json!("b")),
                ("fetch#2".to_string(), json!("c"))
            ],
            "sequential: {sequential}"
        );
        assert!(events[0]
            .iter()
            .any(|e| matches!(e, Event::MultiInstanceCompleted { step, .. } if step == "fetch")));
        assert!(matches!(s.wait_at("fetched"), Some(Wait::Message { .. })));
        assert_eq!(s.waits.len(), 1, "{:?}", s.waits);
    }
}
