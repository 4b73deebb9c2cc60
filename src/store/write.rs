//! Write in one place: what a batch of transitions planned (`machine::effects`, gathered in
//! [`Effects`]) becomes one statement per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::transition::{Lease, Settle, Slot, Work};
use super::{
    conn::Conn, consumer::OutboxRow, jobs::ClaimedJob, sql::Queries, stored_state::describe_wait,
    Error, Result,
};
use crate::bucket::{buckets_of, key_buckets};
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
    pub(super) subs_delete: Vec<(Uuid, String)>,
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
            Effect::EndWait { step, listens } => end_waits(fx, id, &step, listens),
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
fn end_waits(fx: &mut Effects, id: Uuid, step: &str, listens: bool) {
    let before = fx.subs_insert.len();
    fx.subs_insert
        .retain(|(i, s, _), _| !(*i == id && s == step));
    if listens && fx.subs_insert.len() == before {
        fx.subs_delete.push((id, step.to_string()));
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

/// Write a batch: one statement per table whatever the batch size (arrays through `unnest`),
/// pipelined on the connection: new and updated `instances` rows (updates checked against the
/// stream version each was read at), `events`, `jobs`, `outbox`, subscriptions, inbox marks,
/// timers and withdrawn jobs. Returns the earliest due time of the timers it wrote.
pub(super) async fn write(
    c: &impl Conn,
    q: &Queries,
    now: DateTime<Utc>,
    lease: Option<&Lease>,
    slots: &HashMap<Uuid, Slot>,
    fx: &Effects,
) -> Result<Option<DateTime<Utc>>> {
    let mut ins_id = Vec::new();
    let mut ins_process = Vec::new();
    let mut ins_version = Vec::new();
    let mut ins_key = Vec::new();
    let mut ins_status = Vec::new();
    let mut ins_step = Vec::new();
    let mut ins_waiting = Vec::new();
    let mut ins_vars = Vec::new();
    let mut ins_state = Vec::new();
    let mut ins_seq = Vec::new();
    let mut ins_at = Vec::new();
    let mut ins_unique = Vec::new();
    let mut up_id = Vec::new();
    let mut up_version = Vec::new();
    let mut up_expected = Vec::new();
    let mut up_status = Vec::new();
    let mut up_step = Vec::new();
    let mut up_waiting = Vec::new();
    let mut up_vars = Vec::new();
    let mut up_state = Vec::new();
    let mut up_seq = Vec::new();
    let mut up_at = Vec::new();
    for (id, slot) in slots {
        if !slot.touched {
            continue;
        }
        let (step, waiting) = describe_wait(&slot.state, slot.last_step.as_deref());
        let vars = Json(&slot.state.variables);
        let state = Json(&slot.state);
        if slot.is_new {
            ins_id.push(*id);
            ins_process.push(slot.process.clone());
            ins_version.push(slot.version);
            ins_key.push(slot.state.business_key.clone());
            ins_unique.push(slot.def.unique_business_key.is_some());
            ins_status.push(slot.state.status.as_str().to_string());
            ins_step.push(step);
            ins_waiting.push(waiting);
            ins_vars.push(vars);
            ins_state.push(state);
            ins_seq.push(slot.seq);
            ins_at.push(slot.started_at);
        } else {
            up_id.push(*id);
            up_version.push(slot.version);
            up_expected.push(slot.seq_before);
            up_status.push(slot.state.status.as_str().to_string());
            up_step.push(step);
            up_waiting.push(waiting);
            up_vars.push(vars);
            up_state.push(state);
            up_seq.push(slot.seq);
            up_at.push(now);
        }
    }
    let up_count = up_id.len() as u64;
    let lease_token: Vec<Option<Uuid>> = fx
        .job_leased
        .iter()
        .map(|l| if *l { lease.map(|l| l.token) } else { None })
        .collect();
    let lease_owner: Vec<Option<String>> = fx
        .job_leased
        .iter()
        .map(|l| {
            if *l {
                lease.map(|l| l.owner.clone())
            } else {
                None
            }
        })
        .collect();
    let lease_exp: Vec<Option<DateTime<Utc>>> = fx
        .job_leased
        .iter()
        .map(|l| {
            if *l {
                lease.map(|l| l.expires_at)
            } else {
                None
            }
        })
        .collect();
    let job_id: Vec<Uuid> = fx.jobs.iter().map(|j| j.job_id).collect();
    let job_inst: Vec<Uuid> = fx.jobs.iter().map(|j| j.instance_id).collect();
    let traces = fx.jobs.iter().map(|j| j.trace.as_ref());
    let job_trace_key: Vec<Option<&str>> = traces.clone().map(|t| t.map(|t| &*t.key)).collect();
    let job_traceparent: Vec<Option<&str>> = traces.map(|t| t.map(|t| &*t.traceparent)).collect();
    let job_step: Vec<&str> = fx.jobs.iter().map(|j| j.step_id.as_str()).collect();
    let job_handler: Vec<&str> = fx.jobs.iter().map(|j| j.handler.as_str()).collect();
    let job_vars: Vec<&Value> = fx.jobs.iter().map(|j| &j.variables).collect();
    let job_at: Vec<DateTime<Utc>> = vec![now; fx.jobs.len()];
    let job_run_at: Vec<DateTime<Utc>> = fx.job_run_at.iter().map(|r| r.unwrap_or(now)).collect();
    // Claims so far: a leased new job is claimed once; a job re-armed for attempt n has
    // had n - 1.
    let job_attempts: Vec<i32> = fx
        .jobs
        .iter()
        .zip(&fx.job_leased)
        .zip(&fx.job_run_at)
        .map(|((j, leased), retry)| match retry {
            Some(_) => j.attempts - 1,
            None => i32::from(*leased),
        })
        .collect();

    let ob_id: Vec<Uuid> = fx.outbox.iter().map(|o| o.0).collect();
    let ob_inst: Vec<Uuid> = fx.outbox.iter().map(|o| o.1).collect();
    let ob_topic: Vec<&str> = fx.outbox.iter().map(|o| o.2.as_str()).collect();
    let ob_kind: Vec<&str> = fx.outbox.iter().map(|o| o.3).collect();
    let ob_name: Vec<&str> = fx.outbox.iter().map(|o| o.4.as_str()).collect();
    let ob_key: Vec<&str> = fx.outbox.iter().map(|o| o.5.as_str()).collect();
    let ob_payload: Vec<&Value> = fx.outbox.iter().map(|o| &o.6).collect();
    let ob_seq: Vec<i64> = fx.outbox.iter().map(|o| o.8).collect();
    let (ob_trace, ob_parent): (Vec<Option<&str>>, Vec<Option<&str>>) = (fx.outbox.iter())
        .map(|o| {
            o.7.as_ref()
                .map(|t| (t.key.as_str(), t.traceparent.as_str()))
                .unzip()
        })
        .unzip();

    type SubRow<'a> = (&'a (Uuid, String, String), &'a String);
    let mut subs: Vec<SubRow> = fx.subs_insert.iter().collect();
    subs.sort();
    let si_inst: Vec<Uuid> = subs.iter().map(|s| s.0 .0).collect();
    let si_step: Vec<&str> = subs.iter().map(|s| s.0 .1.as_str()).collect();
    let si_name: Vec<&str> = subs.iter().map(|s| s.0 .2.as_str()).collect();
    let si_key: Vec<&str> = subs.iter().map(|s| s.1.as_str()).collect();
    let si_at: Vec<DateTime<Utc>> = vec![now; subs.len()];
    let sd_inst: Vec<Uuid> = fx.subs_delete.iter().map(|s| s.0).collect();
    let sd_step: Vec<&str> = fx.subs_delete.iter().map(|s| s.1.as_str()).collect();

    let st_id: Vec<&str> = fx.settles.iter().map(|s| s.message_id.as_str()).collect();
    let st_status: Vec<&str> = fx.settles.iter().map(|s| s.status).collect();
    let st_inst: Vec<Option<Uuid>> = fx.settles.iter().map(|s| s.instance_id).collect();
    let st_reason: Vec<Option<&str>> = fx.settles.iter().map(|s| s.reason.as_deref()).collect();
    let st_at: Vec<DateTime<Utc>> = vec![now; fx.settles.len()];
    let st_key: Vec<&str> = fx.settles.iter().map(|s| s.key.as_str()).collect();

    let ins = async {
        if ins_id.is_empty() {
            return Ok(0);
        }
        c.exec(
            &q.instances_insert,
            &[
                &ins_id,
                &ins_process,
                &ins_version,
                &ins_key,
                &ins_status,
                &ins_step,
                &ins_waiting,
                &ins_vars,
                &ins_state,
                &ins_seq,
                &ins_at,
                &ins_unique,
            ],
        )
        .await
    };
    let upd = async {
        if up_id.is_empty() {
            return Ok(0);
        }
        c.exec_planned(
            &q.instances_update,
            &[
                &up_id,
                &up_expected,
                &up_status,
                &up_step,
                &up_waiting,
                &up_vars,
                &up_state,
                &up_seq,
                &up_at,
                &up_version,
                &buckets_of(&up_id),
            ],
        )
        .await
    };
    let ev_data: Vec<Json<&Event>> = fx.ev_data.iter().map(Json).collect();
    let xid = c.xid();
    let evs = async {
        if fx.ev_instance.is_empty() {
            return Ok(0);
        }
        c.exec(
            &q.events_append,
            &[
                &fx.ev_instance,
                &fx.ev_seq,
                &fx.ev_type,
                &ev_data,
                &fx.ev_at,
                &crate::machine::EVENT_SCHEMA,
                &xid,
            ],
        )
        .await
    };
    let jobs = async {
        if job_id.is_empty() {
            return Ok(0);
        }
        c.exec(
            &q.jobs_insert,
            &[
                &job_id,
                &job_inst,
                &job_step,
                &job_handler,
                &job_vars,
                &job_at,
                &lease_token,
                &lease_owner,
                &lease_exp,
                &job_run_at,
                &job_attempts,
                &job_trace_key,
                &job_traceparent,
            ],
        )
        .await
    };
    let outbox = async {
        if ob_id.is_empty() {
            return Ok(0);
        }
        c.exec(
            &q.outbox_insert,
            &[
                &ob_id,
                &ob_inst,
                &ob_topic,
                &ob_kind,
                &ob_name,
                &ob_key,
                &ob_payload,
                &now,
                &xid,
                &ob_trace,
                &ob_parent,
                &ob_seq,
            ],
        )
        .await
    };
    let sub_del = async {
        if sd_inst.is_empty() {
            return Ok(0);
        }
        c.exec(&q.subscriptions_delete, &[&sd_inst, &sd_step]).await
    };
    let sub_ins = async {
        if si_inst.is_empty() {
            return Ok(0);
        }
        c.exec(
            &q.subscriptions_insert,
            &[&si_inst, &si_step, &si_name, &si_key, &si_at],
        )
        .await
    };
    let settle = async {
        if st_id.is_empty() {
            return Ok(0);
        }
        c.exec_planned(
            &q.inbox_settle,
            &[
                &st_id,
                &st_status,
                &st_inst,
                &st_reason,
                &st_at,
                &st_key,
                &key_buckets(&st_key),
            ],
        )
        .await
    };
    let tm_id: Vec<Uuid> = fx.timers.iter().map(|t| t.0).collect();
    let tm_inst: Vec<Uuid> = fx.timers.iter().map(|t| t.1).collect();
    let tm_step: Vec<&str> = fx.timers.iter().map(|t| t.2.as_str()).collect();
    let tm_kind: Vec<&str> = fx.timers.iter().map(|t| t.3).collect();
    let tm_due: Vec<DateTime<Utc>> = fx.timers.iter().map(|t| t.4).collect();
    let tm_at: Vec<DateTime<Utc>> = vec![now; fx.timers.len()];
    let next_timer = tm_due.iter().min().copied();
    let (cancelled, withdrawn) = (&fx.timers_cancelled, &fx.jobs_withdrawn);
    let timers = async {
        let mut n = 0;
        if !cancelled.is_empty() {
            let b = buckets_of(cancelled);
            n += c.exec_planned(&q.timers_delete, &[cancelled, &b]).await?;
        }
        if !tm_id.is_empty() {
            n += c
                .exec(
                    &q.timers_insert,
                    &[&tm_id, &tm_inst, &tm_step, &tm_kind, &tm_due, &tm_at],
                )
                .await?;
        }
        if !withdrawn.is_empty() {
            let b = buckets_of(withdrawn);
            n += c.exec_planned(&q.jobs_withdraw, &[withdrawn, &b]).await?;
        }
        n += super::versions::write_moves(c, q, &fx.jobs_moved, &fx.timers_moved).await?;
        n += super::tasks::write_tasks(c, q, now, &fx.tasks_put, &fx.tasks_removed).await?;
        n += super::signals::throw_in(c, q, now, &fx.signals).await?;
        Ok(n)
    };
    // All statements run pipelined: when one fails, the ones after it fail with "current
    // transaction is aborted". Report the statement that failed first, not those.
    let (r0, r1, r2, r3, r4, r5, r6, r7, r8) =
        tokio::join!(ins, upd, evs, jobs, outbox, sub_del, sub_ins, settle, timers);
    let mut cause: Option<tokio_postgres::Error> = None;
    let mut counts = Vec::with_capacity(9);
    for r in [r0, r1, r2, r3, r4, r5, r6, r7, r8] {
        match r {
            Ok(n) => counts.push(n),
            Err(e) => {
                counts.push(0);
                let aborted = |e: &tokio_postgres::Error| {
                    e.code() == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
                };
                if cause.as_ref().is_none_or(|c| aborted(c) && !aborted(&e)) {
                    cause = Some(e);
                }
            }
        }
    }
    if let Some(e) = cause {
        return Err(e.into());
    }
    let updated = counts[1];
    if updated != up_count {
        return Err(Error::Conflict(format!(
            "{} of {} instances changed under their lock",
            up_count - updated,
            up_count
        )));
    }

    Ok(next_timer)
}
