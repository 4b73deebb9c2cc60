//! One transition, one transaction: lock the instances, decide, append the events, update the
//! current-state rows and write every effect the events imply, for a whole batch of instances
//! at once (one statement per table, whatever the batch size).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::Instrument;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::buffered::still_waiting;
use super::stored_state::state_from;
use super::{ClaimedJob, Conn, Error, Result, Store};
use crate::bucket::buckets_of;
use crate::definition::Process;
use crate::machine::{self, Context, Event, Input, InstanceState, Parent, Status, Wait};

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
        /// The message that started it, when one did (its start may name its first step).
        start_message: Option<String>,
        /// The trace it continues; `None`: a new one.
        trace: Option<crate::machine::Trace>,
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
    /// Whether the batch threw signals (to broadcast).
    pub signals_thrown: bool,
}

impl Applied {
    /// Fold another batch's results into this one (for transactions that apply several).
    pub(crate) fn merge(&mut self, other: Applied) {
        self.outcomes.extend(other.outcomes);
        self.leased_jobs.extend(other.leased_jobs);
        self.unleased_jobs |= other.unleased_jobs;
        self.outbox_written |= other.outbox_written;
        self.signals_thrown |= other.signals_thrown;
        self.ended.extend(other.ended);
        self.next_timer = match (self.next_timer, other.next_timer) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

pub(super) struct Slot {
    pub(super) def: Arc<Process>,
    pub(super) process: String,
    pub(super) version: i32,
    pub(super) state: InstanceState,
    pub(super) seq_before: i64,
    pub(super) seq: i64,
    pub(super) is_new: bool,
    pub(super) touched: bool,
    pub(super) last_step: Option<String>,
    pub(super) started_at: DateTime<Utc>,
}

/// An inbox row's fate, written in the same transaction.
pub(crate) struct Settle {
    pub message_id: String,
    /// Its correlation key, which places its inbox row (`bucket_of_key`).
    pub key: String,
    pub status: &'static str,
    pub instance_id: Option<Uuid>,
    pub reason: Option<String>,
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

        let mut fx = super::write::Effects {
            settles,
            ..super::write::Effects::default()
        };
        let mut outcomes = Vec::with_capacity(works.len());
        let mut queue: std::collections::VecDeque<(Work, bool)> =
            works.into_iter().map(|w| (w, true)).collect();
        // A chain of calls between parents and children is bounded: a runaway one (a process
        // that calls itself at once, forever) fails the batch rather than the database.
        let mut follow_budget = 10_000usize;
        // Instances that started to wait for messages in this batch, with the (name, key)
        // pairs they wait for; and, for those that took one, the pairs they still wait for.
        let mut waiting: Vec<(Uuid, Vec<(String, String)>)> = Vec::new();
        let mut leftover: HashMap<Uuid, Vec<(String, String)>> = HashMap::new();
        // Messages taken in an earlier round of this batch (still `buffered` until it writes).
        let mut taken_ids: Vec<String> = Vec::new();
        loop {
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
                        start_message,
                        trace,
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
                            start_message,
                            trace,
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
                            trace_key = tracing::field::Empty,
                            traceparent = tracing::field::Empty,
                        );
                        // The trace: the instance's, or for a start the one it will take (its
                        // starter's, or a new one under its business key, as `decide` makes it).
                        let trace =
                            match (&slot.state.trace, &input) {
                                (Some(t), _) => Some(t.clone()),
                                (
                                    None,
                                    Input::Start {
                                        trace,
                                        business_key,
                                        ..
                                    },
                                ) => Some(trace.clone().unwrap_or_else(|| {
                                    crate::machine::Trace::new(business_key, id)
                                })),
                                _ => None,
                            };
                        if let Some(t) = &trace {
                            span.record("trace_key", t.key.as_str());
                            span.record("traceparent", t.traceparent.as_str());
                            crate::telemetry::link(&span, Some(t.traceparent.as_str()));
                        }
                        let r = self
                            .run(c, now, id, slot, input, lease, &mut fx)
                            .instrument(span.clone())
                            .await;
                        if let Some(step) = &slot.last_step {
                            span.record("step", step.as_str());
                        }
                        r.map(|mut pending| {
                            pending.extend(leftover.remove(&id).unwrap_or_default());
                            if !pending.is_empty() {
                                waiting.push((id, pending));
                            }
                        })
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
                            trace,
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
                                start_message: None,
                                trace,
                            },
                            Err(Error::ProcessNotFound(_)) => {
                                let Some(p) = parent else { continue };
                                Work::Continue {
                                    instance_id: p.instance_id,
                                    input: Input::ChildEnded {
                                        child_id: instance_id,
                                        status: Status::Failed,
                                        variables: Map::new(),
                                        code: None,
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
            // Messages that came before their instances waited for them: taken for the whole
            // batch at once; each instance that took one goes on with it (and may wait again).
            let merged = still_waiting(&slots, std::mem::take(&mut waiting));
            let taken = self.take_buffered(c, now, &merged, &taken_ids).await?;
            if taken.is_empty() {
                break;
            }
            for (id, message_id, pair, payload) in taken {
                taken_ids.push(message_id.clone());
                if let Some((_, p)) = merged.iter().find(|(i, _)| *i == id) {
                    leftover.insert(id, p.iter().filter(|m| **m != pair).cloned().collect());
                }
                fx.settles.push(Settle {
                    message_id: message_id.clone(),
                    key: pair.1.clone(),
                    status: "correlated",
                    instance_id: Some(id),
                    reason: None,
                });
                queue.push_back((
                    Work::Continue {
                        instance_id: id,
                        input: Input::Message {
                            message_id,
                            name: pair.0,
                            payload,
                        },
                    },
                    false,
                ));
            }
        }

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

        // Write everything: one statement per table, pipelined on the connection.
        let next_timer = super::write::write(c, q, now, lease, &slots, &fx).await?;

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
            signals_thrown: !fx.signals.is_empty(),
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
                variables: match row.get::<_, Value>("variables") {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                code: row
                    .get::<_, Value>("state")
                    .get("error_code")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }));
        }
        Ok(None)
    }

    /// Lock and load instances into `slots`: one statement per group of buckets
    /// ([`Store::split_by_group`]), each in id order.
    pub(super) async fn load_slots(
        &self,
        c: &impl Conn,
        now: DateTime<Utc>,
        ids: &[Uuid],
        slots: &mut HashMap<Uuid, Slot>,
    ) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let parts = self
            .split_by_group(c, buckets_of(ids).into_iter().zip(ids.iter().copied()))
            .await?;
        // Sent at once, in the groups' order, which is the order PostgreSQL runs them in.
        let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 3]> = parts
            .iter()
            .map(|p| [&p.items as _, &p.buckets as _, &p.group as _])
            .collect();
        let rows = futures_util::future::try_join_all(
            params
                .iter()
                .map(|p| c.rows_planned(&self.q().instances_lock, p)),
        )
        .await?;
        for row in rows.into_iter().flatten() {
            let id: Uuid = row.get("instance_id");
            let process: String = row.get("process_id");
            let version: i32 = row.get("version");
            let state = state_from(row.get("state"), row.get("variables"))?;
            let seq: i64 = row.get("seq");
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
        fx: &mut super::write::Effects,
    ) -> Result<Vec<(String, String)>> {
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
                record(id, slot, event, now, lease, fx, &mut pending);
            }
            // A child that ended while its parent was paused could not move it then: on
            // resume, its end is taken now.
            if resumed && slot.state.status == Status::Running {
                if let Some(next) = self.ended_child(c, &slot.state).await? {
                    input = next;
                    continue;
                }
            }
            // A message that arrived before the instance waited for it is taken at the end
            // of the batch, for every instance at once (`take_buffered`): any the instance
            // started to wait for in this run and still waits for.
            if pending.is_empty() || slot.state.status != Status::Running {
                return Ok(Vec::new());
            }
            let still = slot.state.awaited_messages(&slot.def);
            pending.retain(|m| still.contains(m));
            pending.sort();
            pending.dedup();
            return Ok(pending);
        }
    }
}

/// Record one event of instance `id`: what it implies (planned by the pure core from the
/// state before it) goes into the batch's writes, the state evolves, and the event is
/// appended. Subscriptions it opens are added to `pending` (a buffered message may match).
pub(super) fn record(
    id: Uuid,
    slot: &mut Slot,
    event: Event,
    now: DateTime<Utc>,
    lease: Option<&Lease>,
    fx: &mut super::write::Effects,
    pending: &mut Vec<(String, String)>,
) {
    let planned = machine::effects(&slot.def, id, &slot.state, &event, now);
    machine::evolve(&mut slot.state, &event);
    slot.seq += 1;
    slot.touched = true;
    if let Some(step) = event.step() {
        slot.last_step = Some(step.to_string());
    }
    for effect in planned {
        fx.add(effect, id, slot, lease, pending);
    }
    fx.ev_instance.push(id);
    fx.ev_seq.push(slot.seq);
    fx.ev_type.push(event.type_name().to_string());
    fx.ev_data.push(event);
    fx.ev_at.push(now);
}
