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
//!
//! "Run forward" enters steps until one waits: a service step emits `JobCreated` and waits; a
//! send step emits `MessageSent` and goes on; a receive step emits `MessageAwaited` and waits;
//! a timer step emits `TimerScheduled` and waits; an end step emits `InstanceCompleted`. A
//! waiting step's boundary timers and timeout are scheduled as it is entered
//! (`TimerScheduled`) and cancelled as its wait ends (`TimerCancelled`), in the same decision.

mod event;
#[cfg(test)]
mod tests;

pub use event::{Event, MessageKind};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{
    lookup, parse_cycle, parse_duration, BoundaryEvent, Output, ProcessDefinition, StepKind,
    TimerSpec,
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
            Wait::Job { step, .. } | Wait::Message { step, .. } | Wait::Timer { step, .. } => step,
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
    /// What the instance waits for, when running.
    pub wait: Option<Wait>,
    /// The last error, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Timers that run now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<ActiveTimer>,
    /// The open incident, if a step ran out of attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
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

impl Default for InstanceState {
    fn default() -> Self {
        InstanceState {
            status: Status::New,
            business_key: String::new(),
            variables: Map::new(),
            wait: None,
            error: None,
            timers: Vec::new(),
            incident: None,
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
    },
    /// Pause the instance: it makes no progress until resumed. Its job, timers and
    /// subscriptions are withdrawn, so messages for it wait in the inbox and due timers wait.
    Pause,
    /// Resume a paused instance: its job, timers and subscriptions come back; messages that
    /// arrived meanwhile and timers that fell due are taken at once.
    Resume,
    /// Cancel the instance: its wait, jobs and timers are withdrawn.
    Cancel {
        /// Why (recorded in the history).
        reason: String,
    },
    /// A timer of this instance is due (the store fires it no earlier than its due time).
    TimerFired {
        /// The timer.
        timer_id: Uuid,
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
    def: &ProcessDefinition,
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
    if state.paused && !matches!(input, Input::Resume | Input::Cancel { .. }) {
        return Err(Rejection::Paused);
    }
    let next: Option<String> = match input {
        Input::Pause => {
            if state.status != Status::Running || state.compensating.is_some() {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if state.paused {
                return Err(Rejection::PauseState("paused already"));
            }
            d.emit(Event::InstancePaused {});
            return Ok(d.out);
        }
        Input::Resume => {
            if !state.paused {
                return Err(Rejection::PauseState("not paused"));
            }
            d.emit(Event::InstanceResumed {});
            return Ok(d.out);
        }
        Input::Start {
            business_key,
            variables,
            message_id,
        } => {
            if state.status != Status::New {
                return Err(Rejection::AlreadyStarted);
            }
            d.emit(Event::InstanceStarted {
                process: def.process.clone(),
                business_key: business_key.clone(),
                variables: variables.clone(),
                message_id: message_id.clone(),
            });
            Some(def.first_step().id.clone())
        }
        Input::JobCompleted { job_id, result } => {
            let step = match &state.wait {
                Some(Wait::Job {
                    step, job_id: j, ..
                }) if j == job_id => step.clone(),
                _ => return Err(not_waiting(state, "job")),
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
            let step = match &state.wait {
                Some(Wait::Job {
                    step, job_id: j, ..
                }) if j == job_id => step.clone(),
                _ => return Err(not_waiting(state, "job")),
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
        Input::Retry { variables } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            let (Some(incident), Some(Wait::Job { job_id, .. })) = (&state.incident, &state.wait)
            else {
                return Err(Rejection::NoIncident);
            };
            d.emit(Event::IncidentResolved {
                step: incident.step.clone(),
                set: variables.clone().unwrap_or_default(),
            });
            d.emit(Event::JobRetryScheduled {
                step: incident.step.clone(),
                job_id: *job_id,
                attempt: 1,
                run_at: ctx.now,
            });
            d.arm_timeout(&incident.step, ctx.now);
            return Ok(d.out);
        }
        Input::Cancel { reason } => {
            if state.status != Status::Running {
                return Err(Rejection::NotRunning(state.status.as_str()));
            }
            if let Some(w) = &state.wait {
                d.emit(Event::WaitInterrupted {
                    step: w.step().to_string(),
                    by: format!("cancelled: {reason}"),
                });
            }
            let steps: Vec<String> = state.timers.iter().map(|t| t.step.clone()).collect();
            for step in steps {
                d.cancel_timers(&step);
            }
            if state.compensating.is_some() {
                return Err(Rejection::NotRunning("compensating"));
            }
            if state.compensable.is_empty() {
                d.emit(Event::InstanceCancelled {
                    reason: reason.clone(),
                });
            } else {
                d.emit(Event::CompensationStarted {
                    reason: reason.clone(),
                    then: None,
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
            let step = match &state.wait {
                Some(Wait::Message { step, name: n, .. }) if n == name => step.clone(),
                Some(w) => {
                    // A boundary message of the waiting step ends the wait another way.
                    let step = w.step().to_string();
                    let boundary = def.step(&step).and_then(|s| {
                        s.boundary
                            .iter()
                            .find(|b| matches!(&b.on, BoundaryEvent::Message(m) if m == name))
                    });
                    let Some(b) = boundary else {
                        return Err(not_waiting(state, "message"));
                    };
                    d.emit(Event::WaitInterrupted {
                        step: step.clone(),
                        by: format!("message {name}"),
                    });
                    d.emit(Event::MessageCorrelated {
                        step: step.clone(),
                        message_id: message_id.clone(),
                        name: name.clone(),
                        set: map_output(&Output::Merge, payload),
                    });
                    d.cancel_timers(&step);
                    d.run_forward(b.next.clone())?;
                    return Ok(d.out);
                }
                None => return Err(not_waiting(state, "message")),
            };
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
                    let job_id = match &state.wait {
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
                    let b = step_def.boundary.get(index).ok_or_else(|| {
                        Rejection::UnknownStep(format!("{}.boundary[{index}]", timer.step))
                    })?;
                    if b.interrupting {
                        d.emit(Event::WaitInterrupted {
                            step: timer.step.clone(),
                            by: format!("timer {timer_id}"),
                        });
                        d.cancel_timers(&timer.step);
                        b.next.clone()
                    } else {
                        if let Some((message, to)) = &b.send {
                            let e = d.send_event(&timer.step, message, to.as_deref(), None, None);
                            d.emit(e);
                        }
                        if timer.remaining > 0 {
                            if let BoundaryEvent::Timer(TimerSpec::Cycle(c)) = &b.on {
                                let interval = parse_cycle(c).map(|(_, i)| i).unwrap_or_default();
                                let id = d.next_id();
                                d.emit(Event::TimerScheduled {
                                    step: timer.step.clone(),
                                    timer_id: id,
                                    kind: timer.kind,
                                    due_at: timer.due_at + interval,
                                    remaining: timer.remaining - 1,
                                });
                            }
                        }
                        return Ok(d.out);
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
    def: &'a ProcessDefinition,
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

    /// A handler attempt failed (an error or a timeout): retry under the step's policy, or
    /// raise an incident when the attempts are used up. The step's other timers are cancelled
    /// either way (a retry starts its timeout anew).
    fn attempt_failed(&mut self, step: &str, job_id: Uuid, error: &str) {
        let attempt = match &self.scratch.wait {
            Some(Wait::Job { attempt, .. }) => *attempt,
            _ => 1,
        };
        // The attempt's timeout goes; boundary timers of the step keep running.
        self.cancel_timeouts(step);
        match self.def.retry_policy(step) {
            Some(policy) if attempt < policy.max_attempts => {
                let salt = job_id.as_u64_pair().0 ^ u64::from(attempt);
                let run_at = self.ctx.now + policy.wait_after(attempt, salt);
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
                self.emit(Event::InstanceCancelled { reason });
                false
            }
        }
    }

    /// Start the timeout of an attempt that may run from `from`, if the step has one.
    fn arm_timeout(&mut self, step: &str, from: DateTime<Utc>) {
        let timeout = match self.def.step(step).map(|s| &s.kind) {
            Some(StepKind::Service {
                timeout: Some(t), ..
            }) => parse_duration(t).ok(),
            _ => None,
        };
        if let Some(t) = timeout {
            let timer_id = self.next_id();
            self.emit(Event::TimerScheduled {
                step: step.to_string(),
                timer_id,
                kind: TimerKind::Timeout,
                due_at: from + t,
                remaining: 0,
            });
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
            TimerSpec::After(d) => Ok((self.ctx.now + parse_duration(d)?, 0)),
            TimerSpec::Cycle(c) => {
                let (n, interval) = parse_cycle(c)?;
                Ok((self.ctx.now + interval, n - 1))
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

    /// Enter steps from `next` on until the instance waits or ends.
    fn run_forward(&mut self, mut next: Option<String>) -> Result<(), Rejection> {
        let def = self.def;
        // A definition is validated, so every path can end; the bound guards against a loop
        // of send steps, which would otherwise never wait.
        let mut budget = def.steps.len() * 4 + 16;
        while let Some(id) = next.take() {
            budget -= 1;
            if budget == 0 {
                self.emit(Event::InstanceFailed {
                    step: id,
                    error: "the process loops without ever waiting".into(),
                });
                break;
            }
            let step = def
                .step(&id)
                .ok_or_else(|| Rejection::UnknownStep(id.clone()))?;
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
                    next = step.next.clone();
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
                    self.emit(Event::CompensationStarted {
                        reason: format!("step {id}"),
                        then: step.next.clone(),
                    });
                    if !self.compensate_next() {
                        return Ok(());
                    }
                    next = step.next.clone();
                }
                StepKind::End => self.emit(Event::InstanceCompleted { step: id.clone() }),
            }
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
    match (&state.status, &state.wait) {
        (Status::Running, Some(w)) => Rejection::NotWaitingFor {
            waiting_at: w.step().to_string(),
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
    match event {
        Event::InstanceStarted {
            business_key,
            variables,
            ..
        } => {
            state.status = Status::Running;
            state.business_key = business_key.clone();
            state.variables = variables.clone();
        }
        Event::JobCreated {
            step,
            job_id,
            handler,
        } => {
            state.wait = Some(Wait::Job {
                step: step.clone(),
                job_id: *job_id,
                handler: handler.clone(),
                attempt: 1,
            })
        }
        Event::JobRetryScheduled { attempt: n, .. } => {
            if let Some(Wait::Job { attempt, .. }) = &mut state.wait {
                *attempt = *n;
            }
        }
        Event::IncidentRaised {
            step,
            error,
            attempts,
            at,
            ..
        } => {
            state.incident = Some(Incident {
                step: step.clone(),
                error: error.clone(),
                attempts: *attempts,
                at: *at,
            })
        }
        Event::IncidentResolved { set, .. } => {
            for (k, v) in set {
                state.variables.insert(k.clone(), v.clone());
            }
            state.incident = None;
            state.error = None;
        }
        Event::InstanceCancelled { .. } => {
            state.status = Status::Cancelled;
            state.wait = None;
            state.timers.clear();
            state.incident = None;
            state.compensating = None;
            state.compensate_then = None;
            state.paused = false;
        }
        Event::StepCompensable { step } => state.compensable.push(step.clone()),
        Event::InstancePaused {} => state.paused = true,
        Event::InstanceResumed {} => state.paused = false,
        Event::CompensationStarted { reason, then } => {
            state.compensating = Some(reason.clone());
            state.compensate_then = then.clone();
            state.wait = None;
            state.incident = None;
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
        Event::JobCompleted { set, .. } | Event::MessageCorrelated { set, .. } => {
            for (k, v) in set {
                state.variables.insert(k.clone(), v.clone());
            }
            state.wait = None;
        }
        Event::JobFailed { error, .. } => state.error = Some(error.clone()),
        Event::BusinessErrorCaught { .. } => {
            state.wait = None;
            state.error = None;
        }
        Event::JobTimedOut { error, .. } => state.error = Some(error.clone()),
        Event::MessageSent { .. } | Event::BoundaryMessageAwaited { .. } => {}
        Event::MessageAwaited { step, name, key } => {
            state.wait = Some(Wait::Message {
                step: step.clone(),
                name: name.clone(),
                key: key.clone(),
            })
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
                state.wait = Some(Wait::Timer {
                    step: step.clone(),
                    timer_id: *timer_id,
                });
            }
        }
        Event::TimerFired { timer_id, kind, .. } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
            if *kind == TimerKind::Step {
                state.wait = None;
            }
        }
        Event::TimerCancelled { timer_id, .. } => {
            state.timers.retain(|t| t.timer_id != *timer_id);
        }
        Event::WaitInterrupted { .. } => state.wait = None,
        Event::InstanceCompleted { .. } => {
            state.status = Status::Completed;
            state.wait = None;
            state.timers.clear();
        }
        Event::InstanceFailed { error, .. } => {
            state.status = Status::Failed;
            state.wait = None;
            state.error = Some(error.clone());
            state.timers.clear();
        }
    }
}
