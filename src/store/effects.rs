//! What a batch of transitions planned (`machine::effects`), gathered as the rows to write:
//! rows created and withdrawn within the batch are never written.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::transition::{Lease, Settle, Slot, Work};
use super::{consumer::OutboxRow, jobs::ClaimedJob};
use crate::machine::{Effect, Event, Input, Parent};

/// The rows a batch writes, gathered from the effects of its events. Rows created and
/// withdrawn within the batch are never written.
#[derive(Default)]
pub(super) struct Effects {
    pub(super) ev_instance: Vec<Uuid>,
    pub(super) ev_seq: Vec<i64>,
    pub(super) ev_type: Vec<String>,
    pub(super) ev_data: Vec<Event>,
    pub(super) ev_at: Vec<DateTime<Utc>>,
    pub(super) jobs: Vec<ClaimedJob>,
    pub(super) job_leased: Vec<bool>,
    pub(super) job_run_at: Vec<Option<DateTime<Utc>>>,
    pub(super) leased_count: usize,
    pub(super) outbox: Vec<OutboxRow>,
    /// (instance, step, message name) -> correlation key.
    pub(super) subs_insert: HashMap<(Uuid, String, String), String>,
    /// Subscriptions to delete: (bucket, instance, step).
    pub(super) subs_delete: Vec<(i16, Uuid, String)>,
    pub(super) settles: Vec<Settle>,
    pub(super) timers: Vec<(Uuid, Uuid, String, &'static str, DateTime<Utc>)>,
    pub(super) timers_cancelled: Vec<Uuid>,
    pub(super) jobs_withdrawn: Vec<Uuid>,
    /// Jobs and timers that follow their steps into another version: (id, step, handler).
    pub(super) jobs_moved: Vec<(Uuid, String, String)>,
    pub(super) timers_moved: Vec<(Uuid, String)>,
    /// Open tasks to write (new or changed) and tasks no longer open.
    pub(super) tasks_put: Vec<super::tasks::TaskPut>,
    pub(super) tasks_removed: Vec<Uuid>,
    /// Signals thrown by the batch's signal steps.
    pub(super) signals: Vec<super::signals::Throw>,
    /// Work the batch's own events cause for other instances (a call step starts a child, a
    /// child's end moves its parent, a cancelled parent cancels its child), applied in the
    /// same transaction.
    pub(super) follow_ups: Vec<Work>,
}

impl Effects {
    /// Add what one event planned to the batch's writes. Rows created and withdrawn within
    /// the batch are never written.
    pub(super) fn add(
        &mut self,
        effect: Effect,
        id: Uuid,
        slot: &Slot,
        lease: Option<&Lease>,
        pending: &mut Vec<(String, String)>,
    ) {
        let fx = self;
        match effect {
            Effect::Job {
                job_id,
                step,
                handler,
                variables,
                rearmed,
            } => {
                let (leased, attempts, token, run_at) = match rearmed {
                    None => {
                        let leased = lease.is_some_and(|l| {
                            l.handlers.contains(&handler) && fx.leased_count < l.budget
                        });
                        fx.leased_count += usize::from(leased);
                        let token = lease.map(|l| l.token).unwrap_or_default();
                        (leased, i32::from(leased), token, None)
                    }
                    Some((attempt, run_at)) => {
                        fx.jobs_withdrawn.retain(|j| *j != job_id);
                        (false, attempt as i32, Uuid::nil(), Some(run_at))
                    }
                };
                fx.jobs.push(ClaimedJob {
                    job_id,
                    instance_id: id,
                    step_id: step,
                    handler,
                    variables: Value::Object(variables),
                    attempts,
                    lease_token: token,
                    process: slot.process.clone(),
                    version: slot.version,
                    trace: slot.state.trace.clone(),
                });
                fx.job_leased.push(leased);
                fx.job_run_at.push(run_at);
            }
            Effect::WithdrawJob { job_id } => withdraw_job(fx, job_id),
            Effect::Send {
                message_id,
                topic,
                kind,
                name,
                key,
                payload,
                trace,
            } => fx.outbox.push((
                message_id, id, topic, kind, name, key, payload, trace, slot.seq,
            )),
            Effect::Subscribe { step, name, key } => {
                fx.subs_insert.insert((id, step, name.clone()), key.clone());
                pending.push((name, key));
            }
            Effect::EndWait {
                step,
                listens,
                keys,
            } => end_waits(fx, id, &step, listens, &keys),
            Effect::Timer {
                timer_id,
                step,
                kind,
                due_at,
            } => {
                fx.timers_cancelled.retain(|x| *x != timer_id);
                fx.timers.push((timer_id, id, step, kind.as_str(), due_at));
            }
            Effect::CancelTimer { timer_id } => {
                // Started and cancelled in this batch: it never reaches the table.
                let before = fx.timers.len();
                fx.timers.retain(|t| t.0 != timer_id);
                if fx.timers.len() == before {
                    fx.timers_cancelled.push(timer_id);
                }
            }
            Effect::MoveJob {
                job_id,
                step,
                handler,
            } => fx.jobs_moved.push((job_id, step, handler)),
            Effect::MoveTimer { timer_id, step } => fx.timers_moved.push((timer_id, step)),
            Effect::StartChild {
                child_id,
                step,
                process,
                business_key,
                variables,
                trace,
            } => fx.follow_ups.push(Work::Start {
                instance_id: child_id,
                process,
                // Resolved to the latest version by the batch.
                version: 0,
                business_key,
                variables,
                message_id: None,
                parent: Some(Parent {
                    instance_id: id,
                    step,
                }),
                start_message: None,
                trace,
            }),
            Effect::CancelChild { child_id, reason } => fx.follow_ups.push(Work::Continue {
                instance_id: child_id,
                input: Input::Cancel {
                    reason,
                    by: String::new(),
                },
            }),
            Effect::Broadcast { signal_id, name } => {
                fx.signals
                    .push((signal_id, name, Value::Object(Default::default()), Some(id)))
            }
            Effect::PutTask {
                task_id,
                step,
                business_key,
                task,
            } => {
                fx.tasks_put.retain(|t| t.task_id != task_id);
                fx.tasks_put.push(super::tasks::TaskPut {
                    task_id,
                    instance_id: id,
                    process: slot.process.clone(),
                    step,
                    business_key,
                    task,
                });
            }
            Effect::RemoveTask { task_id } => {
                // Whether opened in this batch or changed in it, the row is not written; it
                // is deleted in case it was written before.
                fx.tasks_put.retain(|t| t.task_id != task_id);
                fx.tasks_removed.push(task_id);
            }
            Effect::NotifyParent {
                parent,
                status,
                variables,
                code,
            } => fx.follow_ups.push(Work::Continue {
                instance_id: parent,
                input: Input::ChildEnded {
                    child_id: id,
                    status,
                    variables,
                    code,
                },
            }),
        }
    }
}

/// A step's wait ended: its subscriptions go. Those opened in this batch are simply not
/// written; earlier ones are deleted if the step may have any (`listens`).
fn end_waits(fx: &mut Effects, id: Uuid, step: &str, listens: bool, keys: &[String]) {
    let before = fx.subs_insert.len();
    fx.subs_insert
        .retain(|(i, s, _), _| !(*i == id && s == step));
    if listens && fx.subs_insert.len() == before {
        // In the buckets of the keys they may be under (a keyless one is in the instance's).
        let mut buckets: Vec<i16> = (keys.iter())
            .map(|k| match k.as_str() {
                "" => crate::bucket::bucket_of(id),
                k => crate::bucket::bucket_of_key(k),
            })
            .map(i16::from)
            .collect();
        buckets.sort_unstable();
        buckets.dedup();
        for b in buckets {
            fx.subs_delete.push((b, id, step.to_string()));
        }
    }
}

/// Withdraw a job: if it was created in this batch it is simply not written.
fn withdraw_job(fx: &mut Effects, job_id: Uuid) {
    if let Some(i) = fx.jobs.iter().position(|j| j.job_id == job_id) {
        fx.jobs.remove(i);
        fx.job_leased.remove(i);
        fx.job_run_at.remove(i);
    } else {
        fx.jobs_withdrawn.push(job_id);
    }
}
