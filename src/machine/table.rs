//! The transition table in this module's documentation, checked: every row names a scenario
//! below, every scenario has a row, and `decide` gives the events the row lists, in order
//! (exactly, or followed by running forward where the row says so).

use chrono::DateTime;
use serde_json::{json, Map};
use uuid::Uuid;

use super::*;
use crate::definition::{compile, Compensation, ProcessDefinition, RetryPolicy, TimerSpec};

fn ctx(seq: i64) -> Context {
    Context {
        instance_id: Uuid::from_u128(7),
        next_seq: seq,
        now: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
    }
}

fn start() -> Input {
    Input::Start {
        business_key: "o-1".into(),
        variables: json!({"orderId": "o-1"}).as_object().unwrap().clone(),
        message_id: None,
        parent: None,
        start_message: None,
        trace: None,
    }
}

fn retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::new(max_attempts, "PT1S")
}

/// A process of one service step (with `f` applied to it) then an end.
fn service(
    f: impl FnOnce(crate::definition::StepBuilder) -> crate::definition::StepBuilder,
) -> ProcessDefinition {
    f(ProcessDefinition::builder("p").service("work", "h_work"))
        .end("done")
        .build()
        .unwrap()
}

/// One input of a scenario, made from the state so far.
type Step = Box<dyn Fn(&InstanceState) -> Input>;

fn job(s: &InstanceState) -> Uuid {
    s.waits
        .iter()
        .find_map(|w| match w {
            Wait::Job { job_id, .. } => Some(*job_id),
            _ => None,
        })
        .expect("waits for a job")
}

fn timer(s: &InstanceState, kind: TimerKind) -> Uuid {
    s.timers
        .iter()
        .find(|t| {
            t.kind == kind
                || matches!(
                    (t.kind, kind),
                    (TimerKind::Boundary { .. }, TimerKind::Boundary { .. })
                )
        })
        .expect("has the timer")
        .timer_id
}

fn completed() -> Step {
    Box::new(|s| Input::JobCompleted {
        job_id: job(s),
        result: json!({}),
    })
}

fn failed(code: Option<&'static str>) -> Step {
    Box::new(move |s| Input::JobFailed {
        job_id: job(s),
        error: "boom".into(),
        code: code.map(str::to_string),
    })
}

fn fired(kind: TimerKind) -> Step {
    Box::new(move |s| Input::TimerFired {
        timer_id: timer(s, kind),
    })
}

fn message(name: &'static str) -> Step {
    Box::new(move |_| Input::Message {
        message_id: "m-1".into(),
        name: name.into(),
        payload: json!({}),
    })
}

fn by(f: fn(String) -> Input) -> Step {
    Box::new(move |_| f("ops".into()))
}

/// The scenario of each row, by its state and input columns.
fn scenario(state: &str, input: &str) -> Option<(ProcessDefinition, Vec<Step>)> {
    let start_only: Vec<Step> = vec![Box::new(|_| start())];
    let then = |mut before: Vec<Step>, last: Step| {
        before.push(last);
        before
    };
    Some(match (state, input) {
        ("(new)", "`Start`") => (service(|s| s), vec![Box::new(|_| start())]),
        ("waiting for job J", "`JobCompleted(J)`") => {
            (service(|s| s), then(start_only, completed()))
        }
        ("waiting for job J, attempts left", "`JobFailed(J)`") => (
            service(|s| s.retry(retries(3))),
            then(start_only, failed(None)),
        ),
        ("waiting for job J, no attempts left", "`JobFailed(J)`") => (
            service(|s| s.retry(retries(1))),
            then(start_only, failed(None)),
        ),
        ("waiting for job J, the error's code routed", "`JobFailed(J, code)`") => (
            ProcessDefinition::builder("p")
                .service("work", "h_work")
                .on_error("card_expired", "fix")
                .end("done")
                .service("fix", "h_fix")
                .end("fixed")
                .build()
                .unwrap(),
            then(start_only, failed(Some("card_expired"))),
        ),
        ("waiting for job J", "`Fault(J)`") => (
            service(|s| s.retry(retries(3))),
            then(
                start_only,
                Box::new(|s| Input::Fault {
                    job_id: Some(job(s)),
                    error: "panicked".into(),
                }),
            ),
        ),
        ("running", "`Fault`") => (
            service(|s| s),
            then(
                start_only,
                Box::new(|_| Input::Fault {
                    job_id: None,
                    error: "cannot decide".into(),
                }),
            ),
        ),
        ("incident at job J", "`Retry`") => (
            service(|s| s.retry(retries(1))),
            vec![
                Box::new(|_| start()),
                failed(None),
                Box::new(|_| Input::Retry {
                    variables: None,
                    by: "ops".into(),
                }),
            ],
        ),
        ("running", "`Pause`") => (
            service(|s| s),
            then(start_only, by(|by| Input::Pause { by })),
        ),
        ("paused", "`Resume`") => (
            service(|s| s),
            vec![
                Box::new(|_| start()),
                by(|by| Input::Pause { by }),
                by(|by| Input::Resume { by }),
            ],
        ),
        ("waiting, nothing to undo", "`Cancel`") => (
            service(|s| s),
            then(
                start_only,
                by(|by| Input::Cancel {
                    reason: "asked".into(),
                    by,
                }),
            ),
        ),
        ("waiting, completed steps to undo", "`Cancel`") => (
            ProcessDefinition::builder("p")
                .service("reserve", "h_reserve")
                .compensate(Compensation::Handler {
                    handler: "h_release".into(),
                })
                .service("work", "h_work")
                .end("done")
                .build()
                .unwrap(),
            vec![
                Box::new(|_| start()),
                completed(),
                by(|by| Input::Cancel {
                    reason: "asked".into(),
                    by,
                }),
            ],
        ),
        ("waiting for message M/K", "`Message(M)`") => (
            ProcessDefinition::builder("p")
                .receive("wait", "Go")
                .key("orderId")
                .end("done")
                .build()
                .unwrap(),
            then(start_only, message("Go")),
        ),
        ("waiting, boundary message B", "`Message(B)`") => (
            service(|s| s.or_message("Stop", "done")),
            then(start_only, message("Stop")),
        ),
        ("waiting at an event gateway", "`Message(M)`") => (
            ProcessDefinition::builder("p")
                .event_gateway("first")
                .on_message("Go", "done")
                .on_timer("PT1H", "done")
                .end("done")
                .build()
                .unwrap(),
            then(start_only, message("Go")),
        ),
        ("waiting at a timer step", "`TimerFired(T)`") => (
            ProcessDefinition::builder("p")
                .wait_for("wait", "PT1H")
                .end("done")
                .build()
                .unwrap(),
            then(start_only, fired(TimerKind::Step)),
        ),
        ("waiting, interrupting boundary timer", "`TimerFired(T)`") => (
            service(|s| s.timeout_after("PT1H", "done")),
            then(start_only, fired(TimerKind::Boundary { index: 0 })),
        ),
        ("waiting, non-interrupting boundary timer", "`TimerFired(T)`") => (
            service(|s| s.remind(TimerSpec::After("PT1H".into()), "Nudge", None)),
            then(start_only, fired(TimerKind::Boundary { index: 0 })),
        ),
        ("waiting for job J with a timeout", "`TimerFired(timeout)`") => (
            service(|s| s.timeout("PT1M").retry(retries(1))),
            then(start_only, fired(TimerKind::Timeout)),
        ),
        ("waiting for child C", "`ChildEnded(C)`") => (
            ProcessDefinition::builder("p")
                .call("child", "sub")
                .end("done")
                .build()
                .unwrap(),
            then(
                start_only,
                Box::new(|s| Input::ChildEnded {
                    child_id: s
                        .waits
                        .iter()
                        .find_map(|w| match w {
                            Wait::Child { child_id, .. } => Some(*child_id),
                            _ => None,
                        })
                        .unwrap(),
                    status: Status::Completed,
                    variables: Map::new(),
                    code: None,
                }),
            ),
        ),
        ("waiting at user task T", "`Task(T, Claim)`") => (
            task_process(),
            then(start_only, task_input(TaskAction::Claim { force: false })),
        ),
        ("waiting at user task T", "`Task(T, Complete)`") => (
            task_process(),
            then(
                start_only,
                task_input(TaskAction::Complete {
                    variables: Map::new(),
                    force: false,
                }),
            ),
        ),
        ("waiting for signal S", "`Message(signal:S)`") => (
            ProcessDefinition::builder("p")
                .wait_signal("wait", "Go")
                .end("done")
                .build()
                .unwrap(),
            then(start_only, message("signal:Go")),
        ),
        _ => return None,
    })
}

fn task_process() -> ProcessDefinition {
    ProcessDefinition::builder("p")
        .user_task(
            "review",
            crate::definition::UserTask::new().candidate_groups(["g"]),
        )
        .end("done")
        .build()
        .unwrap()
}

fn task_input(action: TaskAction) -> Step {
    Box::new(move |s| Input::Task {
        task_id: s
            .waits
            .iter()
            .find_map(|w| match w {
                Wait::Task { task_id, .. } => Some(*task_id),
                _ => None,
            })
            .expect("waits at a task"),
        action: action.clone(),
        by: "ann".into(),
    })
}

const SCENARIOS: usize = 23;

/// The rows of the table in `machine/mod.rs`: state, input, events, then.
fn rows() -> Vec<[String; 4]> {
    include_str!("mod.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//! |"))
        .map(|l| {
            l.split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|c| c.len() >= 4 && c[0] != "state" && !c[0].starts_with('-'))
        .map(|c| [c[0].clone(), c[1].clone(), c[2].clone(), c[3].clone()])
        .collect()
}

fn names(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_documented_transitions_hold() {
    let rows = rows();
    assert_eq!(rows.len(), SCENARIOS, "one row per scenario");
    let mut failures = Vec::new();
    for [state, input, events, then] in &rows {
        let Some((def, steps)) = scenario(state, input) else {
            failures.push(format!("no scenario for row \"{state}\" / {input}"));
            continue;
        };
        let process = compile(def);
        let mut s = InstanceState::default();
        let mut seq = 1;
        let mut last = Vec::new();
        for step in &steps {
            let events = decide(&process, &s, &step(&s), ctx(seq)).unwrap();
            for e in &events {
                evolve(&mut s, e);
            }
            seq += events.len() as i64;
            last = events;
        }
        let got: Vec<String> = last.iter().map(|e| e.type_name().to_string()).collect();
        let want = names(events);
        let forward = then == "run forward";
        let ok = if forward {
            got.len() > want.len() && got[..want.len()] == want[..]
        } else {
            got == want
        };
        if !ok {
            failures.push(format!(
                "\"{state}\" / {input}: documented {want:?} ({then}), decided {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
