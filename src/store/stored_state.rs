//! An instance's state as its row stores it, and the wait it describes in words.

use serde_json::{Map, Value};

use super::Result;
use crate::machine::{InstanceState, Wait};

/// An instance's state as stored: the state column, with the variables column put back in.
pub(crate) fn state_from(state: Value, variables: Value) -> Result<InstanceState> {
    let mut state: InstanceState = serde_json::from_value(state)?;
    state.variables = match variables {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok(state)
}

/// The current step and, in words, what the instance waits for (for `instances` columns);
/// with several branches waiting, each is listed.
pub(crate) fn describe_wait(
    state: &InstanceState,
    last_step: Option<&str>,
) -> (Option<String>, Option<String>) {
    let steps = || {
        let s: Vec<&str> = state.waits.iter().map(|w| w.step()).collect();
        (!s.is_empty()).then(|| s.join(", "))
    };
    if state.paused {
        return (steps(), Some("paused by an operator".into()));
    }
    if let Some(i) = state.incidents.first() {
        return (
            Some(i.step.clone()),
            Some(format!(
                "incident after {} attempts: {}",
                i.attempts, i.error
            )),
        );
    }
    let describe = |w: &Wait| match w {
        Wait::Job { handler, .. } => format!("job {handler}"),
        Wait::Message { name, key, .. } => format!("message {name} key {key}"),
        Wait::Timer { timer_id, .. } => {
            let due = state
                .timers
                .iter()
                .find(|t| t.timer_id == *timer_id)
                .map(|t| {
                    t.due_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                })
                .unwrap_or_default();
            format!("timer due {due}")
        }
        Wait::Gateway { step, .. } => format!("first event of gateway {step}"),
        Wait::Task { task, .. } => match &task.assignee {
            Some(a) => format!("task held by {a}"),
            None => "task to claim".to_string(),
        },
        Wait::Child {
            child_id, process, ..
        } => format!("child {process} {child_id}"),
        Wait::Scope { step } => format!("the steps inside subprocess {step}"),
        Wait::Armed { step } => format!("the event of {step}"),
    };
    // A subprocess waits while the steps inside it do: those are what it waits for.
    let inner: Vec<Wait> = state
        .waits
        .iter()
        .filter(|w| !matches!(w, Wait::Scope { .. } | Wait::Armed { .. }))
        .cloned()
        .collect();
    let shown = if inner.is_empty() {
        &state.waits
    } else {
        &inner
    };
    match shown.as_slice() {
        [] => (last_step.map(str::to_string), None),
        [w] => (Some(w.step().to_string()), Some(describe(w))),
        many => (
            steps(),
            Some(
                many.iter()
                    .map(|w| format!("{}: {}", w.step(), describe(w)))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
    }
}
