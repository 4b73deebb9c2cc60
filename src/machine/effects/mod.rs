//! What each event implies outside the instance's own stream: jobs, outbox messages,
//! subscriptions, timers, and work for other instances (a child to start or cancel, a parent to
//! tell). Pure, like `decide` and `evolve`: the store only writes what this says, so these rules
//! are tested here without a database.
//!
//! `effects` is called with the state *before* the event is applied (what an interrupt or an
//! end withdraws is what there was before it).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Event, InstanceState, OpenTask, Status, TimerKind, Wait};
use crate::definition::{BoundaryEvent, Process};

/// One thing an event makes happen outside its stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A job for a handler. New (`rearmed: None`): it may be leased to the engine that made
    /// it at once. Re-armed (a retry after a wait, or a resume): it runs again from `run_at`,
    /// after `attempts` claims so far.
    Job {
        /// The job id (the handler's idempotency key).
        job_id: Uuid,
        /// The step it belongs to.
        step: String,
        /// The handler that runs it.
        handler: String,
        /// The instance's variables it runs with.
        variables: Map<String, Value>,
        /// `None` for a new job; for a re-armed one, the claims so far and when it may run.
        rearmed: Option<(u32, DateTime<Utc>)>,
    },
    /// A job that will not run (its wait ended some other way).
    WithdrawJob {
        /// The job.
        job_id: Uuid,
    },
    /// A message into the outbox.
    Send {
        /// Its id.
        message_id: Uuid,
        /// The topic: the recipient, else the message's name.
        topic: String,
        /// `command` or `event`.
        kind: &'static str,
        /// The message's name.
        name: String,
        /// Its correlation key.
        key: String,
        /// Its payload.
        payload: Value,
        /// The trace it goes out under (the sending instance's).
        trace: Option<super::Trace>,
    },
    /// A subscription: the instance waits at `step` for message `name` with `key` (and a
    /// message with them already in the buffer is taken).
    Subscribe {
        /// The waiting step.
        step: String,
        /// The message name.
        name: String,
        /// The correlation key.
        key: String,
    },
    /// The wait at `step` ended: its subscriptions go. `listens`: whether the step may have
    /// had any (so they must be deleted, not only left unwritten).
    EndWait {
        /// The step.
        step: String,
        /// Whether it may have had subscriptions.
        listens: bool,
        /// The correlation keys they may be under (`InstanceState::subscription_keys`, from
        /// the state before the wait ended; empty when it had none): their buckets are where
        /// they are deleted.
        keys: Vec<String>,
    },
    /// A timer to keep (a new one, or one put back on resume).
    Timer {
        /// Its id.
        timer_id: Uuid,
        /// The step it belongs to.
        step: String,
        /// What it is for.
        kind: TimerKind,
        /// When it is due.
        due_at: DateTime<Utc>,
    },
    /// A timer that will not fire.
    CancelTimer {
        /// Its id.
        timer_id: Uuid,
    },
    /// A waiting job moves to another step (and handler): the instance migrated.
    MoveJob {
        /// The job.
        job_id: Uuid,
        /// Its step in the new version.
        step: String,
        /// Its handler in the new version.
        handler: String,
    },
    /// A timer moves to another step: the instance migrated.
    MoveTimer {
        /// The timer.
        timer_id: Uuid,
        /// Its step in the new version.
        step: String,
    },
    /// Start a child instance (a call step), in the same transaction.
    StartChild {
        /// Its id.
        child_id: Uuid,
        /// The calling step.
        step: String,
        /// The process it runs (its latest version).
        process: String,
        /// Its business key (the parent's).
        business_key: String,
        /// Its variables.
        variables: Map<String, Value>,
        /// The trace it continues (the parent's).
        trace: Option<super::Trace>,
    },
    /// Cancel a child instance whose wait ended.
    CancelChild {
        /// The child.
        child_id: Uuid,
        /// Why, in its history.
        reason: String,
    },
    /// A signal to broadcast once the transition commits.
    Broadcast {
        /// The broadcast's id.
        signal_id: Uuid,
        /// The signal's name.
        name: String,
    },
    /// An open user task, new or changed: its row in the task list is written as this.
    PutTask {
        /// The task.
        task_id: Uuid,
        /// Its step.
        step: String,
        /// The instance's business key.
        business_key: String,
        /// Who holds it, to whom it is offered, when it is due.
        task: OpenTask,
    },
    /// A task that is no longer open (completed, or withdrawn with its wait).
    RemoveTask {
        /// The task.
        task_id: Uuid,
    },
    /// Tell the parent that this instance ended.
    NotifyParent {
        /// The parent instance.
        parent: Uuid,
        /// How it ended.
        status: Status,
        /// Its variables at the end.
        variables: Map<String, Value>,
        /// The business error code it ended with, if any.
        code: Option<String>,
    },
}

/// Whether the step has boundary message events (so a wait there may have subscriptions).
fn has_boundary_messages(process: &Process, step: &str) -> bool {
    process.step(step).is_some_and(|s| {
        s.boundary
            .iter()
            .any(|b| matches!(b.on, BoundaryEvent::Message(_) | BoundaryEvent::Signal(_)))
    })
}

/// What `event`, applied to `before` of instance `instance` at `now`, implies.
pub fn effects(
    process: &Process,
    instance: Uuid,
    before: &InstanceState,
    event: &Event,
    now: DateTime<Utc>,
) -> Vec<Effect> {
    let end_wait = |step: &str, listens: bool| Effect::EndWait {
        step: step.to_string(),
        listens,
        keys: if listens {
            before.subscription_keys(step)
        } else {
            Vec::new()
        },
    };
    match event {
        Event::JobCreated {
            step,
            job_id,
            handler,
        } => vec![Effect::Job {
            job_id: *job_id,
            step: step.clone(),
            handler: handler.clone(),
            variables: job_variables(process, step, before, now),
            rearmed: None,
        }],
        Event::JobRetryScheduled {
            step,
            job_id,
            attempt,
            run_at,
        } => {
            // The handler of the job being retried (a compensation's, while compensating).
            let handler = match before.job_wait(*job_id) {
                Some(Wait::Job { handler, .. }) => handler.clone(),
                _ => String::new(),
            };
            vec![Effect::Job {
                job_id: *job_id,
                step: step.clone(),
                handler,
                variables: job_variables(process, step, before, now),
                rearmed: Some((*attempt, *run_at)),
            }]
        }
        Event::MessageSent {
            message_id,
            name,
            kind,
            to,
            key,
            payload,
            ..
        } => vec![Effect::Send {
            message_id: *message_id,
            topic: to.clone().unwrap_or_else(|| name.clone()),
            kind: kind.as_str(),
            name: name.clone(),
            key: key.clone(),
            payload: payload.clone(),
            trace: before.trace.clone(),
        }],
        Event::MilestoneReached {
            step,
            milestone,
            message_id,
        } => {
            // Published for a central monitor, keyed by the trace (the business key for
            // instances started before traces were kept).
            let key = before
                .trace
                .as_ref()
                .map_or(before.business_key.clone(), |t| t.key.clone());
            vec![Effect::Send {
                message_id: *message_id,
                topic: crate::definition::MILESTONES_TOPIC.to_string(),
                kind: "event",
                name: "MilestoneReached".into(),
                key,
                payload: serde_json::json!({
                    "process": process.definition().process,
                    "instance_id": instance,
                    "business_key": before.business_key,
                    "step": step,
                    "milestone": milestone,
                    "reached_at": now,
                }),
                trace: before.trace.clone(),
            }]
        }
        Event::MessageAwaited { step, name, key }
        | Event::BoundaryMessageAwaited { step, name, key } => vec![Effect::Subscribe {
            step: step.clone(),
            name: name.clone(),
            key: key.clone(),
        }],
        Event::MessageCorrelated { step, .. } => vec![end_wait(step, true)],
        Event::JobCompleted { step, .. }
        | Event::JobFailed { step, .. }
        | Event::ChildCompleted { step, .. } => {
            vec![end_wait(step, has_boundary_messages(process, step))]
        }
        Event::JobTimedOut { step, job_id, .. } => vec![
            Effect::WithdrawJob { job_id: *job_id },
            end_wait(step, has_boundary_messages(process, step)),
        ],
        Event::TimerScheduled {
            step,
            timer_id,
            kind,
            due_at,
            ..
        } => vec![Effect::Timer {
            timer_id: *timer_id,
            step: step.clone(),
            kind: *kind,
            due_at: *due_at,
        }],
        Event::TimerCancelled { timer_id, .. } => vec![Effect::CancelTimer {
            timer_id: *timer_id,
        }],
        Event::WaitInterrupted { step, by } => {
            let prev = before.wait_at(step);
            let listens = matches!(prev, Some(Wait::Message { .. } | Wait::Gateway { .. }))
                || has_boundary_messages(process, step);
            let mut out = vec![end_wait(step, listens)];
            match prev {
                Some(Wait::Job { job_id, .. }) => out.push(Effect::WithdrawJob { job_id: *job_id }),
                Some(Wait::Task { task_id, .. }) => {
                    out.push(Effect::RemoveTask { task_id: *task_id })
                }
                Some(Wait::Child { child_id, .. }) => out.push(Effect::CancelChild {
                    child_id: *child_id,
                    reason: format!("its parent {instance}: {by}"),
                }),
                _ => {}
            }
            out
        }
        Event::ChildStarted {
            step,
            child_id,
            process: callee,
            variables,
        } => vec![Effect::StartChild {
            child_id: *child_id,
            step: step.clone(),
            process: callee.clone(),
            business_key: before.business_key.clone(),
            variables: variables.clone(),
            trace: before.trace.clone(),
        }],
        Event::InstancePaused { .. } => {
            // Withdraw what could move the instance: jobs, timers, subscriptions.
            let mut out = Vec::new();
            for w in &before.waits {
                if let Wait::Job { job_id, .. } = w {
                    out.push(Effect::WithdrawJob { job_id: *job_id });
                }
                out.push(end_wait(w.step(), true));
            }
            for t in &before.timers {
                out.push(Effect::CancelTimer {
                    timer_id: t.timer_id,
                });
            }
            out
        }
        Event::InstanceResumed { .. } => {
            // Put it all back, as it was (the buffer is looked at by the store).
            let mut out = Vec::new();
            for w in &before.waits {
                if let Wait::Job {
                    step,
                    job_id,
                    handler,
                    attempt,
                } = w
                {
                    if before.incident_at(step).is_some() {
                        continue;
                    }
                    out.push(Effect::Job {
                        job_id: *job_id,
                        step: step.clone(),
                        handler: handler.clone(),
                        variables: job_variables(process, step, before, now),
                        rearmed: Some((*attempt, now)),
                    });
                }
            }
            let awaited = before.awaited_messages(process);
            for w in &before.waits {
                for (name, key) in before
                    .awaited_messages_at(process, w.step())
                    .into_iter()
                    .filter(|m| awaited.contains(m))
                {
                    out.push(Effect::Subscribe {
                        step: w.step().to_string(),
                        name,
                        key,
                    });
                }
            }
            for t in &before.timers {
                out.push(Effect::Timer {
                    timer_id: t.timer_id,
                    step: t.step.clone(),
                    kind: t.kind,
                    due_at: t.due_at,
                });
            }
            out
        }
        Event::InstanceCompleted { .. }
        | Event::InstanceFailed { .. }
        | Event::InstanceCancelled { .. } => {
            // Withdraw what the end leaves behind (other branches' jobs and subscriptions),
            // and tell a parent its child ended.
            let mut out = Vec::new();
            for w in &before.waits {
                match w {
                    Wait::Job { job_id, .. } => out.push(Effect::WithdrawJob { job_id: *job_id }),
                    Wait::Task { task_id, .. } => {
                        out.push(Effect::RemoveTask { task_id: *task_id })
                    }
                    Wait::Child { child_id, .. } => out.push(Effect::CancelChild {
                        child_id: *child_id,
                        reason: format!("its parent {instance} ended"),
                    }),
                    _ => {}
                }
                out.push(end_wait(w.step(), true));
            }
            if let Some(p) = &before.parent {
                out.push(Effect::NotifyParent {
                    parent: p.instance_id,
                    status: match event {
                        Event::InstanceCompleted { .. } => Status::Completed,
                        Event::InstanceFailed { .. } => Status::Failed,
                        _ => Status::Cancelled,
                    },
                    variables: before.variables.clone(),
                    code: before.error_code.clone(),
                });
            }
            out
        }
        Event::BusinessErrorCaught { step, .. }
        | Event::EventSubprocessStarted { step }
        | Event::SubprocessCompleted { step }
        | Event::MultiInstanceCompleted { step, .. } => {
            vec![end_wait(step, has_boundary_messages(process, step))]
        }
        Event::Migrated {
            steps, handlers, ..
        } => migrated(process, before, event, steps, handlers),
        Event::TaskCreated { .. }
        | Event::TaskClaimed { .. }
        | Event::TaskUnclaimed { .. }
        | Event::TaskAssigned { .. }
        | Event::TaskUpdated { .. } => {
            // The task as it is after the event.
            let mut after = InstanceState {
                waits: before
                    .waits
                    .iter()
                    .filter(|w| matches!(w, Wait::Task { .. }))
                    .cloned()
                    .collect(),
                ..InstanceState::default()
            };
            super::evolve(&mut after, event);
            after
                .waits
                .into_iter()
                .filter_map(|w| match w {
                    Wait::Task {
                        step,
                        task_id,
                        task,
                    } if event_task(event) == Some(task_id) => Some(Effect::PutTask {
                        task_id,
                        step,
                        business_key: before.business_key.clone(),
                        task,
                    }),
                    _ => None,
                })
                .collect()
        }
        Event::SignalThrown {
            signal_id, name, ..
        } => vec![Effect::Broadcast {
            signal_id: *signal_id,
            name: name.clone(),
        }],
        Event::TaskCompleted { step, task_id, .. } => vec![
            Effect::RemoveTask { task_id: *task_id },
            end_wait(step, has_boundary_messages(process, step)),
        ],
        _ => Vec::new(),
    }
}

/// What a job of `step` runs with: the instance's variables, with the step's input
/// mappings added.
fn job_variables(
    process: &Process,
    step: &str,
    before: &InstanceState,
    now: DateTime<Utc>,
) -> Map<String, Value> {
    let mut vars = before.variables.clone();
    vars.extend(before.element_variables(process, step));
    if let Some(s) = process.step(step) {
        if !s.inputs.is_empty() {
            let inputs = crate::definition::map_all(&s.inputs, &vars, &Map::new(), Some(now));
            vars.extend(inputs);
        }
    }
    vars
}

/// The task an event concerns.
fn event_task(event: &Event) -> Option<Uuid> {
    match event {
        Event::TaskCreated { task_id, .. }
        | Event::TaskClaimed { task_id, .. }
        | Event::TaskUnclaimed { task_id, .. }
        | Event::TaskAssigned { task_id, .. }
        | Event::TaskUpdated { task_id, .. }
        | Event::TaskCompleted { task_id, .. } => Some(*task_id),
        _ => None,
    }
}

/// A migration (`process` is the version migrated to): jobs and timers follow their renamed
/// steps, and the subscriptions are those of the waits in the new version. A paused instance
/// has no timers or subscriptions to move (resuming puts them back, from the new version).
fn migrated(
    process: &Process,
    before: &InstanceState,
    event: &Event,
    steps: &std::collections::BTreeMap<String, String>,
    handlers: &std::collections::BTreeMap<String, String>,
) -> Vec<Effect> {
    let renamed = |s: &str| steps.get(s).cloned().unwrap_or_else(|| s.to_string());
    let mut out = Vec::new();
    for w in &before.waits {
        if let Wait::Job {
            step,
            job_id,
            handler,
            ..
        } = w
        {
            let step = renamed(step);
            out.push(Effect::MoveJob {
                job_id: *job_id,
                handler: handlers.get(&step).unwrap_or(handler).clone(),
                step,
            });
        }
    }
    // Open tasks stay in the task list while paused: they follow their steps either way.
    let mut after = before.clone();
    super::evolve(&mut after, event);
    for w in &after.waits {
        if let Wait::Task {
            step,
            task_id,
            task,
        } = w
        {
            out.push(Effect::PutTask {
                task_id: *task_id,
                step: step.clone(),
                business_key: after.business_key.clone(),
                task: task.clone(),
            });
        }
    }
    if before.paused {
        return out;
    }
    for t in &before.timers {
        out.push(Effect::MoveTimer {
            timer_id: t.timer_id,
            step: renamed(&t.step),
        });
    }
    for w in &before.waits {
        out.push(Effect::EndWait {
            step: w.step().to_string(),
            listens: true,
            keys: before.subscription_keys(w.step()),
        });
    }
    for w in &after.waits {
        for (name, key) in after.awaited_messages_at(process, w.step()) {
            out.push(Effect::Subscribe {
                step: w.step().to_string(),
                name,
                key,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
