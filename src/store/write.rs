//! Write in one place: what a batch of transitions planned (`machine::effects`, gathered in
//! [`Effects`]) becomes one statement per table.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::transition::{Lease, Slot};
use super::{conn::Conn, sql::Queries, stored_state::describe_wait, Error, Result};
use crate::bucket::{buckets_of, key_buckets};
use crate::machine::Event;

pub(super) use super::effects::Effects;

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
    let sd_bucket: Vec<i16> = fx.subs_delete.iter().map(|s| s.0).collect();
    let sd_inst: Vec<Uuid> = fx.subs_delete.iter().map(|s| s.1).collect();
    let sd_step: Vec<&str> = fx.subs_delete.iter().map(|s| s.2.as_str()).collect();

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
        (c.exec(&q.subscriptions_delete, &[&sd_inst, &sd_step, &sd_bucket])).await
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
