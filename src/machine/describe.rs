//! Events in plain words: the one-line summaries `longrun show` and the console print, read
//! from the typed event (what [`upcast`](super::upcast) gives), so a new event type cannot be
//! forgotten here without the compiler saying so.

use chrono::SecondsFormat;
use serde_json::{Map, Value};

use super::Event;

/// A map of variables as JSON text.
fn vars(m: &Map<String, Value>) -> Value {
    Value::Object(m.clone())
}

impl Event {
    /// A one-line summary in plain words, with who asked for an operator's action.
    pub fn describe(&self) -> String {
        let text = self.what();
        match self.by() {
            Some(by) if !by.is_empty() && !matches!(self, Event::WaitInterrupted { .. }) => {
                format!("{text} (by {by})")
            }
            _ => text,
        }
    }

    /// Who asked for it, for the events an operator (or a tool) causes.
    fn by(&self) -> Option<&str> {
        match self {
            Event::IncidentResolved { by, .. }
            | Event::CompensationStarted { by, .. }
            | Event::InstancePaused { by }
            | Event::InstanceResumed { by }
            | Event::InstanceCancelled { by, .. }
            | Event::Migrated { by, .. }
            | Event::TaskClaimed { by, .. }
            | Event::TaskUnclaimed { by, .. }
            | Event::TaskAssigned { by, .. }
            | Event::TaskUpdated { by, .. }
            | Event::TaskCompleted { by, .. } => Some(by),
            _ => None,
        }
    }

    fn what(&self) -> String {
        match self {
            Event::InstanceStarted {
                business_key,
                variables,
                ..
            } => format!("key {business_key} variables {}", vars(variables)),
            Event::JobCreated { step, handler, .. } => format!("{step} -> handler {handler}"),
            Event::JobCompleted { step, set, .. } => format!("{step} set {}", vars(set)),
            Event::JobFailed { step, error, .. } | Event::JobTimedOut { step, error, .. } => {
                format!("{step}: {error}")
            }
            Event::MessageSent {
                step,
                name,
                to,
                key,
                ..
            } => match to {
                Some(to) => format!("{step}: command {name} to {to} key {key}"),
                None => format!("{step}: event {name} key {key}"),
            },
            Event::MessageAwaited { step, name, key } => {
                format!("{step}: waits for {name} key {key}")
            }
            Event::BoundaryMessageAwaited { step, name, key } => {
                format!("{step}: or for {name} key {key}")
            }
            Event::MessageCorrelated {
                step,
                message_id,
                name,
                set,
            } => format!("{step}: {name} (id {message_id}) set {}", vars(set)),
            Event::MilestoneReached {
                step, milestone, ..
            } => format!("{step}: milestone {milestone}"),
            Event::BoundaryMessageReceived {
                step,
                message_id,
                name,
                set,
            } => format!(
                "{step}: meanwhile {name} (id {message_id}) set {}",
                vars(set)
            ),
            Event::InstanceCompleted { step } => format!("at {step}"),
            Event::InstanceFailed { step, error } => format!("at {step}: {error}"),
            Event::TimerScheduled {
                step, kind, due_at, ..
            } => format!(
                "{step}: {} timer due {}",
                kind.as_str(),
                due_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
            Event::TimerFired { step, kind, .. } => {
                format!("{step}: {} timer fired", kind.as_str())
            }
            Event::TimerCancelled { step, .. } => {
                format!("{step}: timer cancelled, its wait ended")
            }
            Event::WaitInterrupted { step, by } => format!("{step}: wait ended by {by}"),
            Event::JobRetryScheduled {
                step,
                attempt,
                run_at,
                ..
            } => format!(
                "{step}: attempt {attempt} at {}",
                run_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
            Event::IncidentRaised {
                step,
                error,
                attempts,
                ..
            } => format!("{step}: after {attempts} attempts: {error}"),
            Event::IncidentResolved { step, set, .. } => {
                format!("{step}: retried, set {}", vars(set))
            }
            Event::InstanceCancelled { reason, .. } => format!("reason: {reason}"),
            Event::BusinessErrorCaught { step, code, .. } => {
                format!("{step}: business error {code}")
            }
            Event::StepCompensable { step } => {
                format!("{step}: completed; undone if the instance is cancelled")
            }
            Event::CompensationStarted { reason, .. } => {
                format!("undoing completed steps, newest first ({reason})")
            }
            Event::StepCompensated { step } => format!("{step}: undone"),
            Event::CompensationFinished { then } => format!("compensations done; on to {then}"),
            Event::InstancePaused { .. } => "paused".to_string(),
            Event::InstanceResumed { .. } => "resumed".to_string(),
            Event::StepEntered { step, pass } => format!("{step}: entered, pass {pass}"),
            Event::SignalThrown { step, name, .. } => format!("{step}: threw signal {name}"),
            Event::ErrorThrown { step, code } => format!("{step}: ends with error {code}"),
            Event::InclusiveForked {
                step,
                branches,
                join,
            } => format!("{step}: took {} (joined at {join})", branches.join(", ")),
            Event::TaskCreated {
                step,
                assignee,
                candidate_users,
                candidate_groups,
                due_at,
                ..
            } => {
                let mut to = Vec::new();
                to.extend(assignee.iter().map(|a| format!("assignee {a}")));
                if !candidate_users.is_empty() {
                    to.push(format!("users {}", candidate_users.join(", ")));
                }
                if !candidate_groups.is_empty() {
                    to.push(format!("groups {}", candidate_groups.join(", ")));
                }
                let due = due_at
                    .map(|d| format!(", due {}", d.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
                    .unwrap_or_default();
                let to = if to.is_empty() {
                    "no one".to_string()
                } else {
                    to.join("; ")
                };
                format!("{step}: task for {to}{due}")
            }
            Event::TaskClaimed {
                step,
                assignee,
                previous,
                ..
            } => match previous {
                Some(p) => format!("{step}: task taken from {p} by {assignee}"),
                None => format!("{step}: task claimed by {assignee}"),
            },
            Event::TaskUnclaimed { step, previous, .. } => {
                format!("{step}: task released by {previous}")
            }
            Event::TaskAssigned {
                step,
                assignee,
                candidate_groups,
                ..
            } => {
                let to = assignee.as_deref().unwrap_or("no one");
                match candidate_groups {
                    Some(g) => format!("{step}: task given to {to}, groups {}", g.join(", ")),
                    None => format!("{step}: task given to {to}"),
                }
            }
            Event::TaskUpdated {
                step,
                due_at,
                priority,
                ..
            } => format!(
                "{step}: task due {}, priority {priority}",
                due_at
                    .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                    .unwrap_or_else(|| "never".into())
            ),
            Event::TaskCompleted { step, set, .. } => {
                format!("{step}: task completed, set {}", vars(set))
            }
            Event::GatewayDecided {
                step,
                condition,
                next,
            } => match condition {
                Some(c) => format!("{step}: {c} holds, on to {next}"),
                None => format!("{step}: no condition holds, on to {next} (the default)"),
            },
            Event::ParallelForked { step, branches } => {
                format!("{step}: forked into {}", branches.join(", "))
            }
            Event::JoinArrived {
                step,
                arrived,
                expected,
            } => format!("{step}: {arrived} of {expected} branches arrived"),
            Event::BranchEnded { step } => format!("{step}: branch ended"),
            Event::GatewayEntered { step, key } => {
                format!("{step}: waits for the first of its events, key {key}")
            }
            Event::ChildStarted {
                step,
                child_id,
                process,
                ..
            } => format!("{step}: started {process} as {child_id}"),
            Event::SubprocessEntered { step } => format!("{step}: subprocess entered"),
            Event::EventSubprocessArmed { step } => format!("{step}: listens for its event"),
            Event::EventSubprocessStarted { step } => format!("{step}: its event happened"),
            Event::MultiInstanceStarted { step, items } => {
                format!("{step}: runs for {} elements", items.len())
            }
            Event::ElementCompleted { step, index, .. } => {
                format!("{step}: element {index} completed")
            }
            Event::MultiInstanceCompleted { step, set } => {
                format!("{step}: every element done, set {}", vars(set))
            }
            Event::SubprocessCompleted { step } => format!("{step}: subprocess completed"),
            Event::ChildCompleted {
                step,
                child_id,
                set,
            } => format!("{step}: child {child_id} completed, set {}", vars(set)),
            Event::Migrated {
                from_version,
                to_version,
                steps,
                set,
                ..
            } => {
                let mut text = format!("moved from v{from_version} to v{to_version}");
                if !steps.is_empty() {
                    let renamed: Vec<String> =
                        steps.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
                    text.push_str(&format!(", steps {}", renamed.join(", ")));
                }
                if !set.is_empty() {
                    text.push_str(&format!(", set {}", vars(set)));
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> Event {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn operator_actions_say_who_and_interrupts_do_not_repeat_it() {
        let cancelled = event(json!({"type": "InstanceCancelled", "reason": "asked", "by": "ann"}));
        assert_eq!(cancelled.describe(), "reason: asked (by ann)");
        let interrupted = event(json!({"type": "WaitInterrupted", "step": "pay", "by": "timer"}));
        assert_eq!(interrupted.describe(), "pay: wait ended by timer");
        let anonymous = event(json!({"type": "InstancePaused", "by": ""}));
        assert_eq!(anonymous.describe(), "paused");
    }

    #[test]
    fn newer_event_types_are_described_too() {
        let migrated = event(json!({
            "type": "Migrated", "from_version": 1, "to_version": 2,
            "steps": {"charge": "pay"}, "by": "ops"
        }));
        assert_eq!(
            migrated.describe(),
            "moved from v1 to v2, steps charge -> pay (by ops)"
        );
        let decided = event(json!({
            "type": "GatewayDecided", "step": "amount?", "condition": "amount > 100",
            "next": "review"
        }));
        assert_eq!(
            decided.describe(),
            "amount?: amount > 100 holds, on to review"
        );
        let scheduled = event(json!({
            "type": "TimerScheduled", "step": "wait", "timer_id": "00000000-0000-0000-0000-000000000001",
            "kind": "step", "due_at": "2026-12-02T10:00:00Z"
        }));
        assert_eq!(
            scheduled.describe(),
            "wait: step timer due 2026-12-02T10:00:00Z"
        );
    }
}
