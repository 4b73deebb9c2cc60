//! The pure process state machine: `decide(definition, state, input) -> events` and
//! `evolve(state, event) -> state`. No I/O, no clock, no randomness: the time and the ids come
//! in through [`Context`] and the [`Input`].
//!
//! Transitions, for one instance:
//!
//! | state                   | input             | events                                    |
//! |-------------------------|-------------------|-------------------------------------------|
//! | (new)                   | `Start`           | `InstanceStarted`, then run forward       |
//! | waiting for job J       | `JobCompleted(J)` | `JobCompleted`, then run forward          |
//! | waiting for job J       | `JobFailed(J)`    | `JobFailed`, `InstanceFailed`             |
//! | waiting for message M/K | `Message(M)`      | `MessageCorrelated`, then run forward     |
//! | waiting at a timer step | `TimerFired(T)`   | `TimerFired`, then run forward            |
//! | waiting, boundary timer | `TimerFired(T)`   | interrupting: `TimerFired`, `WaitInterrupted`, then run forward from the timer's `next`; non-interrupting: `TimerFired`, `MessageSent` (and `TimerScheduled` again for a cycle), still waiting |
//! | waiting for job J       | `TimerFired(timeout)` | `TimerFired`, `JobTimedOut`, `InstanceFailed` |
//! | waiting for job J       | `Fault(J)`        | `JobFailed`, `IncidentRaised` (no retries) |
//! | running, no job given   | `Fault`           | `InstanceFailed`                          |
//!
//! "Run forward" enters steps until one waits: a service step emits `JobCreated` and waits; a
//! send step emits `MessageSent` and goes on; a receive step emits `MessageAwaited` and waits;
//! a timer step emits `TimerScheduled` and waits; an end step emits `InstanceCompleted`. A
//! waiting step's boundary timers and timeout are scheduled as it is entered
//! (`TimerScheduled`) and cancelled as its wait ends (`TimerCancelled`), in the same decision.

mod effects;
mod event;
mod migrate;
#[cfg(test)]
mod tests;
mod upcast;

pub use effects::{effects, Effect};
pub use event::{Event, MessageKind};
pub use migrate::{plan_migration, MigrationPlan};
pub use upcast::{upcast, UpcastError, EVENT_SCHEMA};

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{
    later, lookup, parse_cycle_lenient as parse_cycle, parse_duration_lenient as parse_duration,
    BoundaryEvent, Output, Process, StepKind, TimerSpec,
};

/// The lifecycle status of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not yet started (the state before `InstanceStarted`).
    New,
    /// Started and not ended; it is waiting for a job or a message.
    Running,
    /// Reached an end step.
    Completed,
    /// A step failed and the instance cannot go on.
    Failed,
    /// An operator or the application cancelled it.
    Cancelled,
}

impl Status {
    /// The statuses an instance row can have, as stored (not `New`: a row exists once started).
    pub const STORED: [Status; 4] = [
        Status::Running,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ];

    /// The status stored as `name`, if it is one.
    pub fn from_stored(name: &str) -> Option<Status> {
        Status::STORED.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether it has ended (completed, failed or cancelled).
    pub fn is_ended(self) -> bool {
        matches!(self, Status::Completed | Status::Failed | Status::Cancelled)
    }

    /// The name stored in the `instances.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// What a running instance waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Wait {
    /// A handler job.
    Job {
        /// The service step.
        step: String,
        /// The job; its id is the handler's idempotency key, the same for every attempt.
        job_id: Uuid,
        /// The handler name.
        handler: String,
        /// Which attempt runs (or failed last), from 1.
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
    /// A message with this name and correlation key.
    Message {
        /// The receive step.
        step: String,
        /// The message name.
        name: String,
        /// The correlation key.
        key: String,
    },
    /// A timer step's timer.
    Timer {
        /// The timer step.
        step: String,
        /// The timer.
        timer_id: Uuid,
    },
    /// An event-based gateway: the first of its messages (with this key) and timers.
    Gateway {
        /// The gateway step.
        step: String,
        /// The correlation key of its messages.
        key: String,
    },
    /// A call activity's child instance.
    Child {
        /// The call step.
        step: String,
        /// The child instance.
        child_id: Uuid,
        /// The child's process.
        process: String,
    },
}

/// The parent of a child instance started by a call activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parent {
    /// The parent instance.
    pub instance_id: Uuid,
    /// Its call step.
    pub step: String,
}

fn first_attempt() -> u32 {
    1
}

/// A step that failed more often than its retry policy allows: the instance stays there until
/// an operator retries or cancels it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    /// The step.
    pub step: String,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was raised (engine clock).
    pub at: DateTime<Utc>,
}

impl Wait {
    /// The step the instance waits at.
    pub fn step(&self) -> &str {
        match self {
            Wait::Job { step, .. }
            | Wait::Message { step, .. }
            | Wait::Timer { step, .. }
            | Wait::Gateway { step, .. }
            | Wait::Child { step, .. } => step,
        }
    }
}

/// The state of one instance, rebuilt by folding its events with [`evolve`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// Lifecycle status.
    pub status: Status,
    /// The business key (e.g. the order id).
    pub business_key: String,
    /// The instance variables (a JSON object). Not part of the state's serialized form: the
    /// store keeps them in their own column and puts them back when it loads the state.
    #[serde(skip)]
    pub variables: Map<String, Value>,
    /// What the instance waits for, when running: one wait per branch that waits (a
    /// parallel fork makes several).
    #[serde(
        default,
        alias = "wait",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub waits: Vec<Wait>,
    /// The last error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Timers that run now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<ActiveTimer>,
    /// Open incidents: steps that ran out of attempts (one per branch at most).
    #[serde(
        default,
        alias = "incident",
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub incidents: Vec<Incident>,
    /// Branches arrived so far at joins that still wait for others.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub joins: BTreeMap<String, u32>,
    /// How often each step that lies on a loop was entered.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub passes: BTreeMap<String, u32>,
    /// The parent instance, for a child started by a call activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Parent>,
    /// Completed steps that declare a compensation, in order of completion.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensable: Vec<String>,
    /// Set while compensations run: why (a cancel's reason, or the compensate step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensating: Option<String>,
    /// Where to go on once compensations finish (a compensate step's next); none after a
    /// cancel, which ends the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate_then: Option<String>,
    /// Paused by an operator: its job, timers and subscriptions are withdrawn until resumed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
}

/// What a timer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimerKind {
    /// The wait of a timer step.
    Step,
    /// A boundary timer of a waiting step (its index in the step's `boundary`).
    Boundary {
        /// Index in the step's `boundary` list.
        index: usize,
    },
    /// A service step's timeout.
    Timeout,
}

impl TimerKind {
    /// The name stored in `timers.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Step => "step",
            TimerKind::Boundary { .. } => "boundary",
            TimerKind::Timeout => "timeout",
        }
    }
}

/// A running timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveTimer {
    /// The timer id.
    pub timer_id: Uuid,
    /// The step it belongs to.
    pub step: String,
    /// What it belongs to.
    #[serde(flatten)]
    pub kind: TimerKind,
    /// When it fires.
    pub due_at: DateTime<Utc>,
    /// How many more times a cycle fires after this one.
    #[serde(default)]
    pub remaining: u32,
}

/// Accept a single value, `null` or a list (states stored before parallel branches held one
/// wait and one incident).
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    // A visitor rather than an untagged enum: no buffering on the hot path (every
    // transition loads a state).
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("null, an object or a list of objects")
        }
        fn visit_unit<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1));
            while let Some(t) = seq.next_element()? {
                out.push(t);
            }
            Ok(out)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            Ok(vec![T::deserialize(
                serde::de::value::MapAccessDeserializer::new(map),
            )?])
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

impl InstanceState {
    /// The wait at `step`, if a branch waits there.
    pub fn wait_at(&self, step: &str) -> Option<&Wait> {
        self.waits.iter().find(|w| w.step() == step)
    }

    /// The wait for job `job_id`.
    pub fn job_wait(&self, job_id: Uuid) -> Option<&Wait> {
        self.waits
            .iter()
            .find(|w| matches!(w, Wait::Job { job_id: j, .. } if *j == job_id))
    }

    /// The open incident at `step`.
    pub fn incident_at(&self, step: &str) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.step == step)
    }

    /// Every message (name, key) the instance waits for now: receive steps, boundary messages
    /// of waiting steps and event gateways' messages.
    pub fn awaited_messages(&self, def: &Process) -> Vec<(String, String)> {
        self.waits
            .iter()
            .flat_map(|w| self.awaited_messages_at(def, w.step()))
            .collect()
    }

    /// The messages (name, key) the wait at `step` listens for.
    pub fn awaited_messages_at(&self, def: &Process, step: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Some(w) = self.wait_at(step) else {
            return out;
        };
        let key = match w {
            Wait::Message { name, key, .. } => {
                out.push((name.clone(), key.clone()));
                key.clone()
            }
            Wait::Gateway { key, .. } => key.clone(),
            _ => self.business_key.clone(),
        };
        let Some(step) = def.step(step) else {
            return out;
        };
        for b in &step.boundary {
            if let BoundaryEvent::Message(m) = &b.on {
                out.push((m.clone(), key.clone()));
            }
        }
        if let StepKind::EventGateway { events, .. } = &step.kind {
            for e in events {
                if let BoundaryEvent::Message(m) = &e.on {
                    out.push((m.clone(), key.clone()));
                }
            }
        }
        out
    }
}

impl Default for InstanceState {
    fn default() -> Self {
        InstanceState {
            status: Status::New,
            business_key: String::new(),
            variables: Map::new(),
            waits: Vec::new(),
            error: None,
            timers: Vec::new(),
            incidents: Vec::new(),
            joins: BTreeMap::new(),
            passes: BTreeMap::new(),
            parent: None,
            compensable: Vec::new(),
            compensating: None,
            compensate_then: None,
            paused: false,
        }
    }
}

/// Something that happens to an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// Start the instance.
    Start {
        /// The business key.
        business_key: String,
        /// The initial variables.
        variables: Map<String, Value>,
        /// The id of the message that started it, if one did.
        message_id: Option<String>,
        /// The parent, when a call activity starts it.
        parent: Option<Parent>,
    },
    /// A child instance started by a call step ended.
    ChildEnded {
        /// The child instance.
        child_id: Uuid,
        /// How it ended.
        status: Status,
        /// Its final variables.
        variables: Map<String, Value>,
    },
    /// A handler finished the job.
    JobCompleted {
        /// The job.
        job_id: Uuid,
        /// The handler's result.
        result: Value,
    },
    /// A handler failed the job.
    JobFailed {
        /// The job.
        job_id: Uuid,
        /// The error text.
        error: String,
        /// The business error code, if the handler raised one.
        code: Option<String>,
    },
    /// An operator retries the step of the open incident, optionally setting variables first.
    Retry {
        /// Variables to set before the new attempt.
        variables: Option<Map<String, Value>>,
        /// Who asked, recorded in the event (empty if not said).
        by: String,
    },
    /// Pause the instance: it makes no progress until resumed. Its job, timers and
    /// subscriptions are withdrawn, so messages for it wait in the inbox and due timers wait.
    Pause {
        /// Who asked, recorded in the event (empty if not said).
        by: String,
    },
    /// Resume a paused instance: its job, timers and subscriptions come back; messages that
    /// arrived meanwhile and timers that fell due are taken at once.
    Resume {
        /// Who asked, recorded in the event (empty if not said).
        by: String,
    },
    /// Cancel the instance: its wait, jobs and timers are withdrawn.
    Cancel {
        /// Why (recorded in the history).
        reason: String,
        /// Who asked, recorded in the event (empty if not said).
        by: String,
    },
    /// A timer of this instance is due (the store fires it no earlier than its due time).
    TimerFired {
        /// The timer.
        timer_id: Uuid,
    },
    /// The engine could not apply an input to this instance (it panicked, or the database
    /// refused what the transition wrote): the input is set aside so that every other
    /// instance goes on. With the job whose result could not be recorded, the step gets an
    /// incident for an operator (who can fix the variables and retry); otherwise the instance
    /// fails. Either way `error` says why.
    Fault {
        /// The job whose result could not be recorded, if a job's was.
        job_id: Option<Uuid>,
        /// What went wrong (the panic message or the database's).
        error: String,
    },
    /// A message was correlated to this instance.
    Message {
        /// The inbound message id.
        message_id: String,
        /// The message name.
        name: String,
        /// The payload.
        payload: Value,
    },
}

/// The facts `decide` needs from outside: which instance, and the number its next event gets
/// (ids of jobs and outbound messages are derived from both, so they are stable).
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// The instance.
    pub instance_id: Uuid,
    /// The sequence number the first new event gets.
    pub next_seq: i64,
    /// The current time on the engine's clock: timers are due relative to it.
    pub now: DateTime<Utc>,
}

/// Why an input does not apply to the state it was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// `Start` on an instance that already started.
    #[error("the instance has already started")]
    AlreadyStarted,
    /// The instance is not running.
    #[error("the instance is {0}, not running")]
    NotRunning(&'static str),
    /// The instance waits for something else.
    #[error("the instance waits at step \"{waiting_at}\", not for this {what}")]
    NotWaitingFor {
        /// The step the instance waits at.
        waiting_at: String,
        /// What the input was.
        what: &'static str,
    },
    /// The definition lacks a step the state refers to (a bug or a mismatched version).
    #[error("step \"{0}\" is not in the definition")]
    UnknownStep(String),
    /// The instance is paused; only `Resume` and `Cancel` apply.
    #[error("the instance is paused")]
    Paused,
    /// `Resume` on an instance that is not paused, or `Pause` on one that is.
    #[error("the instance is {0}")]
    PauseState(&'static str),
    /// `Retry` on an instance without an open incident.
    #[error("the instance has no open incident to retry")]
    NoIncident,
    /// No such timer runs (it was cancelled or fired already).
    #[error("timer {0} does not run")]
    UnknownTimer(Uuid),
}

/// Namespace for ids derived from (instance, sequence).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6e67_7275_6e00_8000_0000_0000_0001);

/// The stable id of whatever the event at `seq` of `instance` creates (a job, an outbound
/// message): the same transition always yields the same id.
pub fn derived_id(instance: Uuid, seq: i64) -> Uuid {
    let mut name = [0u8; 24];
    name[..16].copy_from_slice(instance.as_bytes());
    name[16..].copy_from_slice(&seq.to_be_bytes());
    Uuid::new_v5(&ID_NAMESPACE, &name)
}

/// Decide which events an input causes. Pure: the same arguments give the same events.
pub fn decide(
    def: &Process,
    state: &InstanceState,
    input: &Input,
    ctx: Context,
) -> Result<Vec<Event>, Rejection> {
    let mut d = Decision {
        def,
        ctx,
        scratch: state.clone(),
        out: Vec::new(),
    };
    if state.paused && !matches!(input, Input::Resume { .. } | Input::Cancel { .. }) {
        return Err(Rejection::Paused);
    }
    crate::failpoint::decide(&state.business_key, input);
    let next: Option<String> = match input {
        Input::Fault { job_id, error } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            match job_id.and_then(|j| state.job_wait(j).cloned()) {
                Some(Wait::Job {
                    step,
                    job_id,
                    attempt,
                    ..
                }) => {
                    d.emit(Event::JobFailed {
                        step: step.clone(),
                        job_id,
                        error: error.clone(),
                    });
                    d.cancel_timeouts(&step);
                    d.emit(Event::IncidentRaised {
                        step,
                        job_id,
                        error: error.clone(),
                        attempts: attempt,
                        at: ctx.now,
                    });
                }
                _ => {
                    let step = state
                        .waits
                        .first()
                        .map(|w| w.step().to_string())
                        .unwrap_or_default();
                    d.emit(Event::InstanceFailed {
                        step,
                        error: error.clone(),
                    });
                }
            }
            return Ok(d.out);
        }
        Input::Pause { by } => {
            if state.status != Status::Running || state.compensating.is_some() {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.paused {
                return Err(Rejection::PauseState("paused already"));
            }
            d.emit(Event::InstancePaused { by: by.clone() });
            return Ok(d.out);
        }
        Input::Resume { by } => {
            if !state.paused {
                return Err(Rejection::PauseState("not paused"));
            }
            d.emit(Event::InstanceResumed { by: by.clone() });
            return Ok(d.out);
        }
        Input::Start {
            business_key,
            variables,
            message_id,
            parent,
        } => {
            if state.status != Status::New {
                return Err(Rejection::AlreadyStarted);
            }
            d.emit(Event::InstanceStarted {
                process: def.process.clone(),
                business_key: business_key.clone(),
                variables: variables.clone(),
                message_id: message_id.clone(),
                parent: parent.clone(),
            });
            Some(def.first_step().id.clone())
        }
        Input::ChildEnded {
            child_id,
            status,
            variables,
        } => {
            let (step, process) = match state
                .waits
                .iter()
                .find(|w| matches!(w, Wait::Child { child_id: c, .. } if c == child_id))
            {
                Some(Wait::Child { step, process, .. }) => (step.clone(), process.clone()),
                _ => return Err(not_waiting(state, "child")),
            };
            if *status != Status::Completed {
                d.emit(Event::InstanceFailed {
                    step,
                    error: format!(
                        "the child instance {child_id} of process {process} ended {}",
                        status.as_str()
                    ),
                });
                return Ok(d.out);
            }
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Call { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            d.emit(Event::ChildCompleted {
                step: step.clone(),
                child_id: *child_id,
                set: map_output(output, &Value::Object(variables.clone())),
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.next_of(&step)?
        }
        Input::JobCompleted { job_id, result } => {
            let step = match state.job_wait(*job_id) {
                Some(w) => w.step().to_string(),
                None => return Err(not_waiting(state, "job")),
            };
            if state.compensating.is_some() {
                // A compensation handler finished: on to the next one.
                d.emit(Event::JobCompleted {
                    step: step.clone(),
                    job_id: *job_id,
                    set: Map::new(),
                });
                d.cancel_timers(&step);
                d.emit(Event::StepCompensated { step });
                if d.compensate_next() {
                    let then = state.compensate_then.clone();
                    d.run_forward(then)?;
                }
                return Ok(d.out);
            }
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Service { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            d.emit(Event::JobCompleted {
                step: step.clone(),
                job_id: *job_id,
                set: map_output(output, result),
            });
            d.cancel_timers(&step);
            d.record_compensable(&step);
            d.next_of(&step)?
        }
        Input::JobFailed {
            job_id,
            error,
            code,
        } => {
            let step = match state.job_wait(*job_id) {
                Some(w) => w.step().to_string(),
                None => return Err(not_waiting(state, "job")),
            };
            d.emit(Event::JobFailed {
                step: step.clone(),
                job_id: *job_id,
                error: error.clone(),
            });
            // A compensation handler's errors are never routed: they are retried, then an
            // incident.
            let route = match (code, def.step(&step).map(|s| &s.kind)) {
                (Some(code), Some(StepKind::Service { errors, .. }))
                    if state.compensating.is_none() =>
                {
                    errors.iter().find(|r| &r.code == code)
                }
                _ => None,
            };
            match route {
                Some(r) => {
                    // A modelled business error: its path, at once, without retries.
                    d.emit(Event::BusinessErrorCaught {
                        step: step.clone(),
                        code: r.code.clone(),
                    });
                    d.cancel_timers(&step);
                    Some(r.next.clone())
                }
                None => {
                    d.attempt_failed(&step, *job_id, error);
                    return Ok(d.out);
                }
            }
        }
        Input::Retry { variables, by } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.incidents.is_empty() {
                return Err(Rejection::NoIncident);
            }
            for (n, incident) in state.incidents.iter().enumerate() {
                let Some(Wait::Job { job_id, .. }) = state.wait_at(&incident.step) else {
                    continue;
                };
                d.emit(Event::IncidentResolved {
                    step: incident.step.clone(),
                    set: if n == 0 {
                        variables.clone().unwrap_or_default()
                    } else {
                        Map::new()
                    },
                    by: by.clone(),
                });
                d.emit(Event::JobRetryScheduled {
                    step: incident.step.clone(),
                    job_id: *job_id,
                    attempt: 1,
                    run_at: ctx.now,
                });
                d.arm_timeout(&incident.step, ctx.now);
            }
            return Ok(d.out);
        }
        Input::Cancel { reason, by } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.compensating.is_some() {
                return Err(Rejection::NotRunning("compensating"));
            }
            d.withdraw_all(&format!("cancelled: {reason}"));
            if state.compensable.is_empty() {
                d.emit(Event::InstanceCancelled {
                    reason: reason.clone(),
                    by: by.clone(),
                });
            } else {
                d.emit(Event::CompensationStarted {
                    reason: reason.clone(),
                    then: None,
                    by: by.clone(),
                });
                d.compensate_next();
            }
            return Ok(d.out);
        }
        Input::Message {
            message_id,
            name,
            payload,
        } => {
            // The receive step waiting for it; else a waiting step with it as a boundary
            // message; else an event gateway waiting for it.
            if let Some(w) = state
                .waits
                .iter()
                .find(|w| matches!(w, Wait::Message { name: n, .. } if n == name))
            {
                let step = w.step().to_string();
                let output = match def.step(&step).map(|s| &s.kind) {
                    Some(StepKind::Receive { output, .. }) => output,
                    _ => return Err(Rejection::UnknownStep(step)),
                };
                d.emit(Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: map_output(output, payload),
                });
                d.cancel_timers(&step);
                d.next_of(&step)?
            } else {
                let mut found = None;
                for w in &state.waits {
                    let Some(s) = def.step(w.step()) else {
                        continue;
                    };
                    if let Some(b) = s
                        .boundary
                        .iter()
                        .find(|b| matches!(&b.on, BoundaryEvent::Message(m) if m == name))
                    {
                        found = Some((s.id.clone(), false, Output::Merge, b.next.clone()));
                        break;
                    }
                    if let (Wait::Gateway { .. }, StepKind::EventGateway { events, .. }) =
                        (w, &s.kind)
                    {
                        if let Some(e) = events
                            .iter()
                            .find(|e| matches!(&e.on, BoundaryEvent::Message(m) if m == name))
                        {
                            found =
                                Some((s.id.clone(), true, e.output.clone(), Some(e.next.clone())));
                            break;
                        }
                    }
                }
                let Some((step, gateway, output, next)) = found else {
                    return Err(not_waiting(state, "message"));
                };
                if !gateway {
                    // A boundary message ends the wait another way.
                    d.interrupt(&step, &format!("message {name}"));
                }
                d.emit(Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: map_output(&output, payload),
                });
                d.cancel_timers(&step);
                next
            }
        }
        Input::TimerFired { timer_id } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            let Some(timer) = state
                .timers
                .iter()
                .find(|t| t.timer_id == *timer_id)
                .cloned()
            else {
                return Err(Rejection::UnknownTimer(*timer_id));
            };
            d.emit(Event::TimerFired {
                step: timer.step.clone(),
                timer_id: *timer_id,
                kind: timer.kind,
            });
            match timer.kind {
                TimerKind::Step => {
                    d.cancel_timers(&timer.step);
                    d.next_of(&timer.step)?
                }
                TimerKind::Timeout => {
                    let job_id = match state.wait_at(&timer.step) {
                        Some(Wait::Job { job_id, .. }) => *job_id,
                        _ => return Err(not_waiting(state, "timeout")),
                    };
                    let after = match def.step(&timer.step).map(|s| &s.kind) {
                        Some(StepKind::Service {
                            timeout: Some(t), ..
                        }) => t.clone(),
                        _ => String::new(),
                    };
                    let error = format!("the handler did not finish within {after}");
                    d.emit(Event::JobTimedOut {
                        step: timer.step.clone(),
                        job_id,
                        error: error.clone(),
                    });
                    d.attempt_failed(&timer.step, job_id, &error);
                    return Ok(d.out);
                }
                TimerKind::Boundary { index } => {
                    let step_def = def
                        .step(&timer.step)
                        .ok_or_else(|| Rejection::UnknownStep(timer.step.clone()))?;
                    if let StepKind::EventGateway { events, .. } = &step_def.kind {
                        // The gateway's timer came first: the other events are withdrawn.
                        let e = events.get(index).ok_or_else(|| {
                            Rejection::UnknownStep(format!("{}.events[{index}]", timer.step))
                        })?;
                        d.interrupt(&timer.step, &format!("timer {timer_id}"));
                        d.cancel_timers(&timer.step);
                        Some(e.next.clone())
                    } else {
                        let b = step_def.boundary.get(index).ok_or_else(|| {
                            Rejection::UnknownStep(format!("{}.boundary[{index}]", timer.step))
                        })?;
                        if b.interrupting {
                            d.interrupt(&timer.step, &format!("timer {timer_id}"));
                            d.cancel_timers(&timer.step);
                            b.next.clone()
                        } else {
                            if let Some((message, to)) = &b.send {
                                let e =
                                    d.send_event(&timer.step, message, to.as_deref(), None, None);
                                d.emit(e);
                            }
                            if timer.remaining > 0 {
                                if let BoundaryEvent::Timer(TimerSpec::Cycle(c)) = &b.on {
                                    match parse_cycle(c).and_then(|(_, i)| later(timer.due_at, i)) {
                                        Ok(due_at) => {
                                            let id = d.next_id();
                                            d.emit(Event::TimerScheduled {
                                                step: timer.step.clone(),
                                                timer_id: id,
                                                kind: timer.kind,
                                                due_at,
                                                remaining: timer.remaining - 1,
                                            });
                                        }
                                        Err(error) => d.emit(Event::InstanceFailed {
                                            step: timer.step.clone(),
                                            error: format!(
                                                "the cycle of step {}: {error}",
                                                timer.step
                                            ),
                                        }),
                                    }
                                }
                            }
                            return Ok(d.out);
                        }
                    }
                }
            }
        }
    };
    d.run_forward(next)?;
    Ok(d.out)
}

/// A decision in progress: the events so far and the state they lead to.
struct Decision<'a> {
    def: &'a Process,
    ctx: Context,
    scratch: InstanceState,
    out: Vec<Event>,
}

impl Decision<'_> {
    fn emit(&mut self, e: Event) {
        evolve(&mut self.scratch, &e);
        self.out.push(e);
    }

    /// The id for whatever the next event creates.
    fn next_id(&self) -> Uuid {
        derived_id(
            self.ctx.instance_id,
            self.ctx.next_seq + self.out.len() as i64,
        )
    }

    fn next_of(&self, step: &str) -> Result<Option<String>, Rejection> {
        match self.def.step(step) {
            Some(s) => Ok(s.next.clone()),
            None => Err(Rejection::UnknownStep(step.to_string())),
        }
    }

    /// End the wait at `step` without its own event (a boundary event, a cancel).
    fn interrupt(&mut self, step: &str, by: &str) {
        self.emit(Event::WaitInterrupted {
            step: step.to_string(),
            by: by.to_string(),
        });
    }

    /// End every branch: each wait is interrupted and every timer cancelled.
    fn withdraw_all(&mut self, by: &str) {
        let steps: Vec<String> = self
            .scratch
            .waits
            .iter()
            .map(|w| w.step().to_string())
            .collect();
        for step in &steps {
            self.interrupt(step, by);
        }
        let timer_steps: Vec<String> = self.scratch.timers.iter().map(|t| t.step.clone()).collect();
        for step in timer_steps {
            self.cancel_timers(&step);
        }
    }

    /// A handler attempt failed (an error or a timeout): retry under the step's policy, or
    /// raise an incident when the attempts are used up. The step's other timers are cancelled
    /// either way (a retry starts its timeout anew).
    fn attempt_failed(&mut self, step: &str, job_id: Uuid, error: &str) {
        let attempt = match self.scratch.job_wait(job_id) {
            Some(Wait::Job { attempt, .. }) => *attempt,
            _ => 1,
        };
        // The attempt's timeout goes; boundary timers of the step keep running.
        self.cancel_timeouts(step);
        match self.def.retry_policy(step) {
            Some(policy) if attempt < policy.max_attempts => {
                let salt = job_id.as_u64_pair().0 ^ u64::from(attempt);
                // wait_after is at most MAX_SPAN; only a clock near the end of time fails here.
                let run_at = later(self.ctx.now, policy.wait_after(attempt, salt))
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                self.emit(Event::JobRetryScheduled {
                    step: step.to_string(),
                    job_id,
                    attempt: attempt + 1,
                    run_at,
                });
                self.arm_timeout(step, run_at);
            }
            _ => self.emit(Event::IncidentRaised {
                step: step.to_string(),
                job_id,
                error: error.to_string(),
                attempts: attempt,
                at: self.ctx.now,
            }),
        }
    }

    /// Remember a completed step whose work may have to be undone.
    fn record_compensable(&mut self, step: &str) {
        if self.def.step(step).is_some_and(|s| s.compensate.is_some()) {
            self.emit(Event::StepCompensable {
                step: step.to_string(),
            });
        }
    }

    /// Run the compensations still due, newest first: a message goes out at once; a handler
    /// is a job the instance waits for (returns false then). When none is left: after a cancel
    /// the instance is cancelled (false); after a compensate step it goes on (true).
    fn compensate_next(&mut self) -> bool {
        while let Some(step) = self.scratch.compensable.last().cloned() {
            match self.def.step(&step).and_then(|s| s.compensate.clone()) {
                Some(crate::definition::Compensation::Handler { handler }) => {
                    let job_id = self.next_id();
                    self.emit(Event::JobCreated {
                        step,
                        job_id,
                        handler,
                    });
                    return false;
                }
                Some(crate::definition::Compensation::Send { send, to }) => {
                    let e = self.send_event(&step, &send, to.as_deref(), None, None);
                    self.emit(e);
                    self.emit(Event::StepCompensated { step });
                }
                None => self.emit(Event::StepCompensated { step }),
            }
        }
        match self.scratch.compensate_then.clone() {
            Some(then) => {
                self.emit(Event::CompensationFinished { then });
                true
            }
            None => {
                let reason = self.scratch.compensating.clone().unwrap_or_default();
                self.emit(Event::InstanceCancelled {
                    reason,
                    by: String::new(),
                });
                false
            }
        }
    }

    /// Start the timeout of an attempt that may run from `from`, if the step has one.
    fn arm_timeout(&mut self, step: &str, from: DateTime<Utc>) {
        let timeout = match self.def.step(step).map(|s| &s.kind) {
            Some(StepKind::Service {
                timeout: Some(t), ..
            }) => parse_duration(t).and_then(|t| later(from, t)),
            _ => return,
        };
        match timeout {
            Ok(due_at) => {
                let timer_id = self.next_id();
                self.emit(Event::TimerScheduled {
                    step: step.to_string(),
                    timer_id,
                    kind: TimerKind::Timeout,
                    due_at,
                    remaining: 0,
                });
            }
            // A stored definition accepted under an older grammar, or a due time out of range:
            // the instance fails with the reason rather than running without its timeout.
            Err(e) => self.emit(Event::InstanceFailed {
                step: step.to_string(),
                error: format!("the timeout of step {step}: {e}"),
            }),
        }
    }

    fn cancel_timeouts(&mut self, step: &str) {
        let ids: Vec<Uuid> = self
            .scratch
            .timers
            .iter()
            .filter(|t| t.step == step && t.kind == TimerKind::Timeout)
            .map(|t| t.timer_id)
            .collect();
        for timer_id in ids {
            self.emit(Event::TimerCancelled {
                step: step.to_string(),
                timer_id,
            });
        }
    }

    /// Cancel every timer of `step` still running.
    fn cancel_timers(&mut self, step: &str) {
        let ids: Vec<Uuid> = self
            .scratch
            .timers
            .iter()
            .filter(|t| t.step == step)
            .map(|t| t.timer_id)
            .collect();
        for timer_id in ids {
            self.emit(Event::TimerCancelled {
                step: step.to_string(),
                timer_id,
            });
        }
    }

    fn send_event(
        &self,
        step: &str,
        message: &str,
        to: Option<&str>,
        key: Option<&str>,
        payload: Option<&Vec<String>>,
    ) -> Event {
        let vars = &self.scratch.variables;
        let payload = match payload {
            None => Value::Object(vars.clone()),
            Some(names) => Value::Object(
                names
                    .iter()
                    .map(|v| (v.clone(), lookup(vars, v).cloned().unwrap_or(Value::Null)))
                    .collect(),
            ),
        };
        Event::MessageSent {
            step: step.to_string(),
            message_id: self.next_id(),
            name: message.to_string(),
            kind: if to.is_some() {
                MessageKind::Command
            } else {
                MessageKind::Event
            },
            to: to.map(str::to_string),
            key: message_key(&self.scratch, key),
            payload,
        }
    }

    /// When a timer spec is due from now, or why it cannot be.
    fn due(&self, spec: &TimerSpec) -> Result<(DateTime<Utc>, u32), String> {
        match spec {
            TimerSpec::After(d) => Ok((later(self.ctx.now, parse_duration(d)?)?, 0)),
            TimerSpec::Cycle(c) => {
                let (n, interval) = parse_cycle(c)?;
                Ok((later(self.ctx.now, interval)?, n - 1))
            }
            TimerSpec::Until(date) if crate::definition::literal_date(date).is_some() => {
                Ok((crate::definition::literal_date(date).expect("checked"), 0))
            }
            TimerSpec::Until(path) => match lookup(&self.scratch.variables, path) {
                Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
                    .map(|t| (t.with_timezone(&Utc), 0))
                    .map_err(|e| format!("variable {path} is not an RFC 3339 date-time: {e}")),
                other => Err(format!(
                    "variable {path} holds no date-time (found {})",
                    other
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "nothing".into())
                )),
            },
        }
    }

    /// Schedule a timer, or fail the instance if its due time cannot be computed.
    fn schedule(&mut self, step: &str, kind: TimerKind, spec: &TimerSpec) -> bool {
        match self.due(spec) {
            Ok((due_at, remaining)) => {
                let timer_id = self.next_id();
                self.emit(Event::TimerScheduled {
                    step: step.to_string(),
                    timer_id,
                    kind,
                    due_at,
                    remaining,
                });
                true
            }
            Err(error) => {
                self.emit(Event::InstanceFailed {
                    step: step.to_string(),
                    error,
                });
                false
            }
        }
    }

    /// Enter steps from `next` on until every branch waits or ends.
    fn run_forward(&mut self, next: Option<String>) -> Result<(), Rejection> {
        let def = self.def;
        let mut queue: VecDeque<String> = next.into_iter().collect();
        // A definition is validated, so every path can end; the bound guards against a loop
        // of steps that never wait.
        let mut budget = def.steps.len() * 4 + 16;
        let mut last = None;
        while let Some(id) = queue.pop_front() {
            if self.scratch.status != Status::Running {
                return Ok(());
            }
            budget -= 1;
            if budget == 0 {
                self.emit(Event::InstanceFailed {
                    step: id,
                    error: "the process loops without ever waiting".into(),
                });
                return Ok(());
            }
            let step = def
                .step(&id)
                .ok_or_else(|| Rejection::UnknownStep(id.clone()))?;
            if def.on_cycle(&id) {
                let pass = self.scratch.passes.get(&id).copied().unwrap_or(0) + 1;
                self.emit(Event::StepEntered {
                    step: id.clone(),
                    pass,
                });
            }
            last = Some(id.clone());
            match &step.kind {
                StepKind::Service {
                    handler, timeout, ..
                } => {
                    let job_id = self.next_id();
                    self.emit(Event::JobCreated {
                        step: id.clone(),
                        job_id,
                        handler: handler.clone(),
                    });
                    if let Some(t) = timeout {
                        if !self.schedule(&id, TimerKind::Timeout, &TimerSpec::After(t.clone())) {
                            return Ok(());
                        }
                    }
                    self.schedule_boundaries(step);
                }
                StepKind::Send {
                    message,
                    to,
                    key,
                    payload,
                } => {
                    let e = self.send_event(
                        &id,
                        message,
                        to.as_deref(),
                        key.as_deref(),
                        payload.as_ref(),
                    );
                    self.emit(e);
                    self.record_compensable(&id);
                    queue.extend(step.next.clone());
                }
                StepKind::Receive { message, key, .. } => {
                    let key = message_key(&self.scratch, key.as_deref());
                    self.emit(Event::MessageAwaited {
                        step: id.clone(),
                        name: message.clone(),
                        key,
                    });
                    self.schedule_boundaries(step);
                }
                StepKind::Timer { timer } => {
                    self.schedule(&id, TimerKind::Step, timer);
                }
                StepKind::Compensate => {
                    // Undoing the work ends every other branch first.
                    queue.clear();
                    self.withdraw_all(&format!("compensation at step {id}"));
                    self.emit(Event::CompensationStarted {
                        reason: format!("step {id}"),
                        then: step.next.clone(),
                        by: String::new(),
                    });
                    if !self.compensate_next() {
                        return Ok(());
                    }
                    queue.extend(step.next.clone());
                }
                StepKind::Exclusive { routes, default } => {
                    let mut taken = None;
                    for (index, r) in routes.iter().enumerate() {
                        let verdict = match def.condition(&id, index) {
                            Some(Ok(e)) => {
                                e.eval(&self.scratch.variables).map_err(|e| e.to_string())
                            }
                            Some(Err(e)) => Err(e.clone()),
                            None => Err("the route has no condition".to_string()),
                        };
                        match verdict {
                            Ok(true) => {
                                taken = Some((Some(r.when.clone()), r.next.clone()));
                                break;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                self.emit(Event::InstanceFailed {
                                    step: id.clone(),
                                    error: format!("condition `{}`: {e}", r.when),
                                });
                                return Ok(());
                            }
                        }
                    }
                    let Some((condition, next)) =
                        taken.or_else(|| default.clone().map(|d| (None, d)))
                    else {
                        self.emit(Event::InstanceFailed {
                            step: id.clone(),
                            error: "no route's condition holds and the gateway has no default"
                                .into(),
                        });
                        return Ok(());
                    };
                    self.emit(Event::GatewayDecided {
                        step: id.clone(),
                        condition,
                        next: next.clone(),
                    });
                    queue.push_back(next);
                }
                StepKind::Parallel { branches } => {
                    self.emit(Event::ParallelForked {
                        step: id.clone(),
                        branches: branches.clone(),
                    });
                    queue.extend(branches.iter().cloned());
                }
                StepKind::Join => {
                    let arrived = self.scratch.joins.get(&id).copied().unwrap_or(0) + 1;
                    let expected = def.incoming(&id) as u32;
                    self.emit(Event::JoinArrived {
                        step: id.clone(),
                        arrived,
                        expected,
                    });
                    if arrived >= expected {
                        queue.extend(step.next.clone());
                    }
                }
                StepKind::EventGateway { key, events } => {
                    let key = message_key(&self.scratch, key.as_deref());
                    self.emit(Event::GatewayEntered {
                        step: id.clone(),
                        key: key.clone(),
                    });
                    for (index, e) in events.iter().enumerate() {
                        match &e.on {
                            BoundaryEvent::Message(name) => {
                                self.emit(Event::BoundaryMessageAwaited {
                                    step: id.clone(),
                                    name: name.clone(),
                                    key: key.clone(),
                                })
                            }
                            BoundaryEvent::Timer(t) => {
                                if !self.schedule(&id, TimerKind::Boundary { index }, t) {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
                StepKind::Call { process, input, .. } => {
                    let vars = &self.scratch.variables;
                    let variables = match input {
                        None => vars.clone(),
                        Some(names) => names
                            .iter()
                            .map(|v| (v.clone(), lookup(vars, v).cloned().unwrap_or(Value::Null)))
                            .collect(),
                    };
                    let child_id = self.next_id();
                    self.emit(Event::ChildStarted {
                        step: id.clone(),
                        child_id,
                        process: process.clone(),
                        variables,
                    });
                    self.schedule_boundaries(step);
                }
                StepKind::End => {
                    if self.scratch.waits.is_empty() && queue.is_empty() {
                        self.emit(Event::InstanceCompleted { step: id.clone() })
                    } else {
                        self.emit(Event::BranchEnded { step: id.clone() })
                    }
                }
            }
        }
        // Every branch ended, yet the instance did not: a join waits for a branch that will
        // never come. Fail it rather than leave it stuck without a word.
        if self.scratch.status == Status::Running
            && self.scratch.waits.is_empty()
            && self.scratch.compensating.is_none()
        {
            let waiting: Vec<String> = self
                .scratch
                .joins
                .iter()
                .map(|(j, n)| format!("{j} ({n} of {} arrived)", self.def.incoming(j)))
                .collect();
            self.emit(Event::InstanceFailed {
                step: last.unwrap_or_default(),
                error: format!(
                    "every branch ended but the instance cannot go on: joins waiting: {}",
                    if waiting.is_empty() {
                        "none".to_string()
                    } else {
                        waiting.join(", ")
                    }
                ),
            });
        }
        Ok(())
    }

    fn schedule_boundaries(&mut self, step: &crate::definition::Step) {
        for (index, b) in step.boundary.iter().enumerate() {
            if self.scratch.status != Status::Running {
                return;
            }
            match &b.on {
                BoundaryEvent::Timer(t) => {
                    self.schedule(&step.id, TimerKind::Boundary { index }, t);
                }
                BoundaryEvent::Message(name) => {
                    let key = match &step.kind {
                        StepKind::Receive { key, .. } => message_key(&self.scratch, key.as_deref()),
                        _ => self.scratch.business_key.clone(),
                    };
                    self.emit(Event::BoundaryMessageAwaited {
                        step: step.id.clone(),
                        name: name.clone(),
                        key,
                    });
                }
            }
        }
    }
}

fn not_waiting(state: &InstanceState, what: &'static str) -> Rejection {
    match (&state.status, state.waits.first()) {
        (Status::Running, Some(_)) => Rejection::NotWaitingFor {
            waiting_at: state
                .waits
                .iter()
                .map(|w| w.step())
                .collect::<Vec<_>>()
                .join(", "),
            what,
        },
        (s, _) => Rejection::NotRunning(s.as_str()),
    }
}

/// The key a send or receive step uses: a variable rendered as text, or the business key.
fn message_key(state: &InstanceState, path: Option<&str>) -> String {
    match path {
        None => state.business_key.clone(),
        Some(p) => match lookup(&state.variables, p) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        },
    }
}

fn map_output(output: &Output, result: &Value) -> Map<String, Value> {
    match output {
        Output::Merge => match result {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        },
        Output::Variable(v) => {
            let mut m = Map::new();
            m.insert(v.clone(), result.clone());
            m
        }
    }
}

/// Apply one event to the state. Total: every event applies to every state.
pub fn evolve(state: &mut InstanceState, event: &Event) {
    fn end_wait(state: &mut InstanceState, step: &str) {
        state.waits.retain(|w| w.step() != step);
    }
    fn set(state: &mut InstanceState, vars: &Map<String, Value>) {
        for (k, v) in vars {
            state.variables.insert(k.clone(), v.clone());
        }
    }
    match event {
        Event::InstanceStarted {
            business_key,
            variables,
            parent,
            ..
        } => {
            state.status = Status::Running;
            state.business_key = business_key.clone();
            state.variables = variables.clone();
            state.parent = parent.clone();
        }
        Event::JobCreated {
            step,
            job_id,
            handler,
        } => {
            end_wait(state, step);
            state.waits.push(Wait::Job {
                step: step.clone(),
                job_id: *job_id,
                handler: handler.clone(),
                attempt: 1,
            })
        }
        Event::JobRetryScheduled {
            job_id, attempt: n, ..
        } => {
            for w in &mut state.waits {
                if let Wait::Job {
                    job_id: j, attempt, ..
                } = w
                {
                    if j == job_id {
                        *attempt = *n;
                    }
                }
            }
        }
        Event::IncidentRaised {
            step,
            error,
            attempts,
            at,
            ..
        } => {
            state.incidents.retain(|i| &i.step != step);
            state.incidents.push(Incident {
                step: step.clone(),
                error: error.clone(),
                attempts: *attempts,
                at: *at,
            })
        }
        Event::IncidentResolved {
            step, set: vars, ..
        } => {
            set(state, vars);
            state.incidents.retain(|i| &i.step != step);
            state.error = None;
        }
        Event::InstanceCancelled { .. } => {
            state.status = Status::Cancelled;
            state.waits.clear();
            state.timers.clear();
            state.incidents.clear();
            state.joins.clear();
            state.compensating = None;
            state.compensate_then = None;
            state.paused = false;
        }
        Event::StepCompensable { step } => state.compensable.push(step.clone()),
        Event::InstancePaused { .. } => state.paused = true,
        Event::InstanceResumed { .. } => state.paused = false,
        Event::CompensationStarted { reason, then, .. } => {
            state.compensating = Some(reason.clone());
            state.compensate_then = then.clone();
            state.waits.clear();
            state.incidents.clear();
            state.joins.clear();
        }
        Event::CompensationFinished { .. } => {
            state.compensating = None;
            state.compensate_then = None;
        }
        Event::StepCompensated { step } => {
            if let Some(i) = state.compensable.iter().rposition(|s| s == step) {
                state.compensable.remove(i);
            }
        }
        Event::JobCompleted {
            step, set: vars, ..
        }
        | Event::MessageCorrelated {
            step, set: vars, ..
        }
        | Event::ChildCompleted {
            step, set: vars, ..
        } => {
            set(state, vars);
            end_wait(state, step);
        }
        Event::JobFailed { error, .. } => state.error = Some(error.clone()),
        Event::BusinessErrorCaught { step, .. } => {
            end_wait(state, step);
            state.error = None;
        }
        Event::JobTimedOut { error, .. } => state.error = Some(error.clone()),
        Event::MessageSent { .. }
        | Event::BoundaryMessageAwaited { .. }
        | Event::GatewayDecided { .. }
        | Event::ParallelForked { .. }
        | Event::BranchEnded { .. } => {}
        Event::MessageAwaited { step, name, key } => {
            end_wait(state, step);
            state.waits.push(Wait::Message {
                step: step.clone(),
                name: name.clone(),
                key: key.clone(),
            })
        }
        Event::GatewayEntered { step, key } => {
            end_wait(state, step);
            state.waits.push(Wait::Gateway {
                step: step.clone(),
                key: key.clone(),
            })
        }
        Event::ChildStarted {
            step,
            child_id,
            process,
            ..
        } => {
            end_wait(state, step);
            state.waits.push(Wait::Child {
                step: step.clone(),
                child_id: *child_id,
                process: process.clone(),
            })
        }
        Event::StepEntered { step, pass } => {
            state.passes.insert(step.clone(), *pass);
        }
        Event::JoinArrived {
            step,
            arrived,
            expected,
        } => {
            if arrived >= expected {
                state.joins.remove(step);
            } else {
                state.joins.insert(step.clone(), *arrived);
            }
        }
        Event::TimerScheduled {
            step,
            timer_id,
            kind,
            due_at,
            remaining,
        } => {
            state.timers.push(ActiveTimer {
                timer_id: *timer_id,
                step: step.clone(),
                kind: *kind,
                due_at: *due_at,
                remaining: *remaining,
            });
            if *kind == TimerKind::Step {
                end_wait(state, step);
                state.waits.push(Wait::Timer {
                    step: step.clone(),
                    timer_id: *timer_id,
                });
            }
        }
        Event::TimerFired {
            step,
            timer_id,
            kind,
        } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
            if *kind == TimerKind::Step {
                end_wait(state, step);
            }
        }
        Event::TimerCancelled { timer_id, .. } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
        }
        Event::WaitInterrupted { step, .. } => end_wait(state, step),
        Event::InstanceCompleted { .. } => {
            state.status = Status::Completed;
            state.waits.clear();
            state.timers.clear();
            state.joins.clear();
        }
        Event::InstanceFailed { error, .. } => {
            state.status = Status::Failed;
            state.waits.clear();
            state.error = Some(error.clone());
            state.timers.clear();
        }
        Event::Migrated {
            steps,
            handlers,
            set: vars,
            ..
        } => {
            let rename = |s: &mut String| {
                if let Some(n) = steps.get(s.as_str()) {
                    *s = n.clone();
                }
            };
            for w in &mut state.waits {
                match w {
                    Wait::Job { step, handler, .. } => {
                        rename(step);
                        if let Some(h) = handlers.get(step.as_str()) {
                            *handler = h.clone();
                        }
                    }
                    Wait::Message { step, .. }
                    | Wait::Timer { step, .. }
                    | Wait::Gateway { step, .. }
                    | Wait::Child { step, .. } => rename(step),
                }
            }
            for t in &mut state.timers {
                rename(&mut t.step);
            }
            for i in &mut state.incidents {
                rename(&mut i.step);
            }
            for c in &mut state.compensable {
                rename(c);
            }
            state.joins = std::mem::take(&mut state.joins)
                .into_iter()
                .map(|(mut k, v)| {
                    rename(&mut k);
                    (k, v)
                })
                .collect();
            state.passes = std::mem::take(&mut state.passes)
                .into_iter()
                .map(|(mut k, v)| {
                    rename(&mut k);
                    (k, v)
                })
                .collect();
            set(state, vars);
        }
    }
}
