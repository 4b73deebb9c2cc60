//! One transition, one transaction: lock the instances, decide, append the events, update the
//! current-state rows and write every effect the events imply, for a whole batch of instances
//! at once (one statement per table, whatever the batch size).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::Instrument;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio_postgres::types::Json;
use uuid::Uuid;

use super::{ClaimedJob, Conn, Error, Result, Store};
use crate::definition::Process;
use crate::machine::{self, Context, Effect, Event, Input, InstanceState, Parent, Status, Wait};

/// A lease under which jobs for this engine's own handlers are created already claimed, so the
/// engine runs them without a claim round trip.
#[derive(Debug, Clone)]
pub(crate) struct Lease {
    pub owner: String,
    pub token: Uuid,
    pub expires_at: DateTime<Utc>,
    pub handlers: Arc<HashSet<String>>,
    /// At most this many jobs are created leased; the rest are left for claiming, so an
    /// engine never takes on more than it can run.
    pub budget: usize,
}

/// One unit of work in a batch.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    /// Start a new instance.
    Start {
        instance_id: Uuid,
        process: String,
        version: i32,
        business_key: String,
        variables: Map<String, Value>,
        message_id: Option<String>,
        parent: Option<Parent>,
    },
    /// Feed an input to an existing instance.
    Continue { instance_id: Uuid, input: Input },
}

impl Work {
    fn instance_id(&self) -> Uuid {
        match self {
            Work::Start { instance_id, .. } | Work::Continue { instance_id, .. } => *instance_id,
        }
    }
}

/// What a batch did.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Per work item, in order: `Ok` or why the instance refused it.
    pub outcomes: Vec<Result<()>>,
    /// Jobs created already leased to the caller's engine.
    pub leased_jobs: Vec<ClaimedJob>,
    /// Whether any job was created for another engine to claim.
    pub unleased_jobs: bool,
    /// Whether anything went into the outbox.
    pub outbox_written: bool,
    /// Instances that ended in this batch, with their final status.
    pub ended: Vec<(Uuid, Status)>,
    /// The earliest due time of the timers this batch started.
    pub next_timer: Option<DateTime<Utc>>,
}

impl Applied {
    /// Fold another batch's results into this one (for transactions that apply several).
    pub(crate) fn merge(&mut self, other: Applied) {
        self.outcomes.extend(other.outcomes);
        self.leased_jobs.extend(other.leased_jobs);
        self.unleased_jobs |= other.unleased_jobs;
        self.outbox_written |= other.outbox_written;
        self.ended.extend(other.ended);
        self.next_timer = match (self.next_timer, other.next_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

struct Slot {
    def: Arc<Process>,
    process: String,
    version: i32,
    state: InstanceState,
    seq_before: i64,
    seq: i64,
    is_new: bool,
    touched: bool,
    last_step: Option<String>,
    started_at: DateTime<Utc>,
}

/// An inbox row's fate, written in the same transaction.
pub(crate) struct Settle {
    pub message_id: String,
    pub status: &'static str,
    pub instance_id: Option<Uuid>,
    pub reason: Option<String>,
}

#[derive(Default)]
struct Effects {
    ev_instance: Vec<Uuid>,
    ev_seq: Vec<i64>,
    ev_type: Vec<String>,
    ev_data: Vec<Event>,
    ev_at: Vec<DateTime<Utc>>,
    jobs: Vec<ClaimedJob>,
    job_leased: Vec<bool>,
    job_run_at: Vec<Option<DateTime<Utc>>>,
    leased_count: usize,
    outbox: Vec<(Uuid, Uuid, String, &'static str, String, String, Value)>,
    /// (instance, step, message name) -> correlation key.
    subs_insert: HashMap<(Uuid, String, String), String>,
    subs_delete: Vec<(Uuid, String)>,
    settles: Vec<Settle>,
    timers: Vec<(Uuid, Uuid, String, &'static str, DateTime<Utc>)>,
    timers_cancelled: Vec<Uuid>,
    jobs_withdrawn: Vec<Uuid>,
    /// Work the batch's own events cause for other instances (a call step starts a child, a
    /// child's end moves its parent, a cancelled parent cancels its child), applied in the
    /// same transaction.
    follow_ups: Vec<Work>,
}

impl Effects {
    /// Add what one event planned to the batch's writes. Rows created and withdrawn within
    /// the batch are never written.
    fn add(
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
            } => fx
                .outbox
                .push((message_id, id, topic, kind, name, key, payload)),
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
            Effect::StartChild {
                child_id,
                step,
                process,
                business_key,
                variables,
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
            }),
            Effect::CancelChild { child_id, reason } => fx.follow_ups.push(Work::Continue {
                instance_id: child_id,
                input: Input::Cancel {
                    reason,
                    by: String::new(),
                },
            }),
            Effect::NotifyParent {
                parent,
                status,
                variables,
            } => fx.follow_ups.push(Work::Continue {
                instance_id: parent,
                input: Input::ChildEnded {
                    child_id: id,
                    status,
                    variables,
                },
            }),
        }
    }
}

impl Store {
    /// Apply a batch of work in the caller's transaction. Rejected inputs are reported per
    /// item and change nothing for that item; database errors abort the whole batch.
    pub(crate) async fn apply(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        works: Vec<Work>,
        lease: Option<&Lease>,
        settles: Vec<Settle>,
    ) -> Result<Applied> {
        let q = self.q();
        let mut slots: HashMap<Uuid, Slot> = HashMap::new();

        // Lock the existing instances, in id order (the query sorts).
        let mut existing: Vec<Uuid> = works
            .iter()
            .filter(|w| matches!(w, Work::Continue { .. }))
            .map(Work::instance_id)
            .collect();
        existing.sort();
        existing.dedup();
        self.load_slots(c, now, &existing, &mut slots).await?;

        let mut fx = Effects {
            settles,
            ..Effects::default()
        };
        let mut outcomes = Vec::with_capacity(works.len());
        let mut queue: std::collections::VecDeque<(Work, bool)> =
            works.into_iter().map(|w| (w, true)).collect();
        // A chain of calls between parents and children is bounded: a runaway one (a process
        // that calls itself at once, forever) fails the batch rather than the database.
        let mut follow_budget = 10_000usize;
        while let Some((work, own)) = queue.pop_front() {
            let id = work.instance_id();
            let input = match work {
                Work::Start {
                    instance_id,
                    process,
                    version,
                    business_key,
                    variables,
                    message_id,
                    parent,
                } => {
                    let def = self.definition_in(c, &process, version).await?;
                    slots.insert(
                        instance_id,
                        Slot {
                            def,
                            process,
                            version,
                            state: InstanceState::default(),
                            seq_before: 0,
                            seq: 0,
                            is_new: true,
                            touched: false,
                            last_step: None,
                            started_at: now,
                        },
                    );
                    Input::Start {
                        business_key,
                        variables,
                        message_id,
                        parent,
                    }
                }
                Work::Continue { input, .. } => {
                    if !own && !slots.contains_key(&id) {
                        self.load_slots(c, now, &[id], &mut slots).await?;
                    }
                    input
                }
            };
            let outcome = match slots.get_mut(&id) {
                None => Err(Error::InstanceNotFound(id)),
                Some(slot) => {
                    let span = tracing::debug_span!(
                        "transition",
                        instance_id = %id,
                        process = %slot.process,
                        version = slot.version,
                        step = tracing::field::Empty,
                    );
                    let r = self
                        .run(c, now, id, slot, input, lease, &mut fx)
                        .instrument(span.clone())
                        .await;
                    if let Some(step) = &slot.last_step {
                        span.record("step", step.as_str());
                    }
                    r
                }
            };
            if own {
                outcomes.push(outcome);
            } else if let Err(e) = outcome {
                // The other side moved on meanwhile (a parent no longer waits for its child).
                tracing::debug!(instance = %id, error = %e, "follow-up not applied");
            }
            for follow in std::mem::take(&mut fx.follow_ups) {
                follow_budget = follow_budget.checked_sub(1).ok_or_else(|| {
                    Error::BadInput("call activities start children without end".into())
                })?;
                let follow = match follow {
                    Work::Start {
                        instance_id,
                        process,
                        business_key,
                        variables,
                        parent,
                        ..
                    } => match self.latest_in(c, &process).await {
                        Ok((version, _)) => Work::Start {
                            instance_id,
                            process,
                            version,
                            business_key,
                            variables,
                            message_id: None,
                            parent,
                        },
                        Err(Error::ProcessNotFound(_)) => {
                            let Some(p) = parent else { continue };
                            Work::Continue {
                                instance_id: p.instance_id,
                                input: Input::ChildEnded {
                                    child_id: instance_id,
                                    status: Status::Failed,
                                    variables: Map::new(),
                                },
                            }
                        }
                        Err(e) => return Err(e),
                    },
                    w => w,
                };
                queue.push_back((follow, false));
            }
        }

        // Write everything: one statement per table, pipelined on the connection.
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
        let mut up_expected = Vec::new();
        let mut up_status = Vec::new();
        let mut up_step = Vec::new();
        let mut up_waiting = Vec::new();
        let mut up_vars = Vec::new();
        let mut up_state = Vec::new();
        let mut up_seq = Vec::new();
        let mut up_at = Vec::new();
        for (id, slot) in &slots {
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
        let ended: Vec<(Uuid, Status)> = slots
            .iter()
            .filter(|(_, s)| {
                s.touched
                    && matches!(
                        s.state.status,
                        Status::Completed | Status::Failed | Status::Cancelled
                    )
            })
            .map(|(id, s)| (*id, s.state.status))
            .collect();

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
        let job_step: Vec<&str> = fx.jobs.iter().map(|j| j.step_id.as_str()).collect();
        let job_handler: Vec<&str> = fx.jobs.iter().map(|j| j.handler.as_str()).collect();
        let job_vars: Vec<&Value> = fx.jobs.iter().map(|j| &j.variables).collect();
        let job_at: Vec<DateTime<Utc>> = vec![now; fx.jobs.len()];
        let job_run_at: Vec<DateTime<Utc>> =
            fx.job_run_at.iter().map(|r| r.unwrap_or(now)).collect();
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
        let ob_at: Vec<DateTime<Utc>> = vec![now; fx.outbox.len()];

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
            c.exec(
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
                ],
            )
            .await
        };
        let ev_data: Vec<Json<&Event>> = fx.ev_data.iter().map(Json).collect();
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
                    &ob_at,
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
            c.exec(
                &q.inbox_settle,
                &[&st_id, &st_status, &st_inst, &st_reason, &st_at],
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
        let timers = async {
            let mut n = 0;
            if !fx.timers_cancelled.is_empty() {
                n += c.exec(&q.timers_delete, &[&fx.timers_cancelled]).await?;
            }
            if !tm_id.is_empty() {
                n += c
                    .exec(
                        &q.timers_insert,
                        &[&tm_id, &tm_inst, &tm_step, &tm_kind, &tm_due, &tm_at],
                    )
                    .await?;
            }
            if !fx.jobs_withdrawn.is_empty() {
                n += c.exec(&q.jobs_withdraw, &[&fx.jobs_withdrawn]).await?;
            }
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
                        e.code()
                            == Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
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

        metrics::histogram!(crate::telemetry::TRANSITION_BATCH).record(outcomes.len() as f64);
        metrics::counter!(crate::telemetry::EVENTS_APPENDED).increment(fx.ev_instance.len() as u64);
        for slot in slots.values().filter(|s| s.touched) {
            metrics::counter!(crate::telemetry::TRANSITIONS, "process" => slot.process.clone())
                .increment(1);
            if let Status::Completed | Status::Failed | Status::Cancelled = slot.state.status {
                metrics::counter!(
                    crate::telemetry::INSTANCES_ENDED,
                    "process" => slot.process.clone(),
                    "status" => slot.state.status.as_str()
                )
                .increment(1);
            }
        }
        let mut leased_jobs = Vec::new();
        let mut unleased_jobs = false;
        for (job, leased) in fx.jobs.into_iter().zip(fx.job_leased) {
            if leased {
                leased_jobs.push(job);
            } else {
                unleased_jobs = true;
            }
        }
        Ok(Applied {
            outcomes,
            leased_jobs,
            unleased_jobs,
            outbox_written: !fx.outbox.is_empty(),
            ended,
            next_timer,
        })
    }

    /// The end of a child this instance waits for, if one has ended already.
    async fn ended_child(&self, c: &impl Conn, state: &InstanceState) -> Result<Option<Input>> {
        for w in &state.waits {
            let Wait::Child { child_id, .. } = w else {
                continue;
            };
            let rows = c.rows(&self.q().instance_get, &[child_id]).await?;
            let Some(row) = rows.first() else { continue };
            let Some(status) =
                Status::from_stored(row.get::<_, &str>("status")).filter(|s| s.is_ended())
            else {
                continue;
            };
            return Ok(Some(Input::ChildEnded {
                child_id: *child_id,
                status,
                variables: match row.get::<_, Value>(7) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
            }));
        }
        Ok(None)
    }

    /// Lock and load instances (in id order) into `slots`.
    async fn load_slots(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        ids: &[Uuid],
        slots: &mut HashMap<Uuid, Slot>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = ids.to_vec();
        for row in c.rows(&self.q().instances_lock, &[&ids]).await? {
            let id: Uuid = row.get(0);
            let process: String = row.get(1);
            let version: i32 = row.get(2);
            let state = state_from(row.get(3), row.get(5))?;
            let seq: i64 = row.get(4);
            let def = self.definition_in(c, &process, version).await?;
            slots.insert(
                id,
                Slot {
                    def,
                    process,
                    version,
                    state,
                    seq_before: seq,
                    seq,
                    is_new: false,
                    touched: false,
                    last_step: None,
                    started_at: now,
                },
            );
        }
        Ok(())
    }

    /// Decide and evolve one instance until it waits, taking buffered messages it starts to
    /// wait for on the way.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        id: Uuid,
        slot: &mut Slot,
        mut input: Input,
        lease: Option<&Lease>,
        fx: &mut Effects,
    ) -> Result<()> {
        let mut pending: Vec<(String, String)> = Vec::new();
        loop {
            let ctx = Context {
                instance_id: id,
                next_seq: slot.seq + 1,
                now,
            };
            let events =
                machine::decide(&slot.def, &slot.state, &input, ctx).map_err(|rejection| {
                    Error::Rejected {
                        instance: id,
                        rejection,
                    }
                })?;
            let resumed = events
                .iter()
                .any(|e| matches!(e, Event::InstanceResumed { .. }));
            for event in events {
                // What the event implies, planned by the pure core from the state before it.
                let planned = machine::effects(&slot.def, id, &slot.state, &event, now);
                machine::evolve(&mut slot.state, &event);
                slot.seq += 1;
                slot.touched = true;
                if let Some(step) = event.step() {
                    slot.last_step = Some(step.to_string());
                }
                for effect in planned {
                    fx.add(effect, id, slot, lease, &mut pending);
                }
                fx.ev_instance.push(id);
                fx.ev_seq.push(slot.seq);
                fx.ev_type.push(event.type_name().to_string());
                fx.ev_data.push(event);
                fx.ev_at.push(now);
            }
            // A child that ended while its parent was paused could not move it then: on
            // resume, its end is taken now.
            if resumed && slot.state.status == Status::Running {
                if let Some(next) = self.ended_child(c, &slot.state).await? {
                    input = next;
                    continue;
                }
            }
            // A message that arrived before the instance waited for it is taken now: any
            // the instance started to wait for in this run and still waits for.
            if pending.is_empty() || slot.state.status != Status::Running {
                return Ok(());
            }
            let still = slot.state.awaited_messages(&slot.def);
            pending.retain(|m| still.contains(m));
            pending.sort();
            pending.dedup();
            if pending.is_empty() {
                return Ok(());
            }
            let locks: Vec<String> = pending
                .iter()
                .map(|(name, key)| self.lock_key(&["correlate", name, key]))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            c.rows(&self.q().correlation_lock, &[&locks]).await?;
            let mut found = None;
            for (i, (name, key)) in pending.iter().enumerate() {
                let rows = c
                    .rows(&self.q().inbox_take_buffered, &[name, key, &now])
                    .await?;
                if let Some(row) = rows.into_iter().next() {
                    found = Some((i, row));
                    break;
                }
            }
            let Some((i, row)) = found else {
                return Ok(());
            };
            let (name, _) = pending.remove(i);
            let message_id: String = row.get(0);
            let payload: Value = row.get(1);
            fx.settles.push(Settle {
                message_id: message_id.clone(),
                status: "correlated",
                instance_id: Some(id),
                reason: None,
            });
            input = Input::Message {
                message_id,
                name,
                payload,
            };
        }
    }
}

/// An instance's state as stored: the state column, with the variables column put back in.
pub(crate) fn state_from(state: Value, variables: Value) -> Result<InstanceState> {
    let mut state: InstanceState = serde_json::from_value(state)?;
    state.variables = match variables {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    Ok(state)
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
        Wait::Child {
            child_id, process, ..
        } => format!("child {process} {child_id}"),
    };
    match state.waits.as_slice() {
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
