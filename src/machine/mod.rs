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
//!
//! "Run forward" enters steps until one waits: a service step emits `JobCreated` and waits; a
//! send step emits `MessageSent` and goes on; a receive step emits `MessageAwaited` and waits;
//! an end step emits `InstanceCompleted`.

mod event;
#[cfg(test)]
mod tests;

pub use event::{Event, MessageKind};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{lookup, Output, ProcessDefinition, StepKind};

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
}

impl Status {
    /// The name stored in the `instances.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Running => "running",
            Status::Completed => "completed",
            Status::Failed => "failed",
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
        /// The job; its id is the handler's idempotency key.
        job_id: Uuid,
        /// The handler name.
        handler: String,
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
}

impl Wait {
    /// The step the instance waits at.
    pub fn step(&self) -> &str {
        match self {
            Wait::Job { step, .. } | Wait::Message { step, .. } => step,
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
}

impl Default for InstanceState {
    fn default() -> Self {
        InstanceState {
            status: Status::New,
            business_key: String::new(),
            variables: Map::new(),
            wait: None,
            error: None,
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
    let mut out = Vec::new();
    let mut scratch = state.clone();
    let emit = |scratch: &mut InstanceState, out: &mut Vec<Event>, e: Event| {
        evolve(scratch, &e);
        out.push(e);
    };
    let next_after: String = match input {
        Input::Start {
            business_key,
            variables,
            message_id,
        } => {
            if state.status != Status::New {
                return Err(Rejection::AlreadyStarted);
            }
            emit(
                &mut scratch,
                &mut out,
                Event::InstanceStarted {
                    process: def.process.clone(),
                    business_key: business_key.clone(),
                    variables: variables.clone(),
                    message_id: message_id.clone(),
                },
            );
            return run_forward(def, scratch, Some(def.first_step().id.clone()), out, ctx);
        }
        Input::JobCompleted { job_id, result } => {
            let step = match &state.wait {
                Some(Wait::Job {
                    step, job_id: j, ..
                }) if j == job_id => step.clone(),
                _ => return Err(not_waiting(state, "job")),
            };
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Service { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            emit(
                &mut scratch,
                &mut out,
                Event::JobCompleted {
                    step: step.clone(),
                    job_id: *job_id,
                    set: map_output(output, result),
                },
            );
            step
        }
        Input::JobFailed { job_id, error } => {
            let step = match &state.wait {
                Some(Wait::Job {
                    step, job_id: j, ..
                }) if j == job_id => step.clone(),
                _ => return Err(not_waiting(state, "job")),
            };
            emit(
                &mut scratch,
                &mut out,
                Event::JobFailed {
                    step: step.clone(),
                    job_id: *job_id,
                    error: error.clone(),
                },
            );
            emit(
                &mut scratch,
                &mut out,
                Event::InstanceFailed {
                    step,
                    error: error.clone(),
                },
            );
            return Ok(out);
        }
        Input::Message {
            message_id,
            name,
            payload,
        } => {
            let step = match &state.wait {
                Some(Wait::Message { step, name: n, .. }) if n == name => step.clone(),
                _ => return Err(not_waiting(state, "message")),
            };
            let output = match def.step(&step).map(|s| &s.kind) {
                Some(StepKind::Receive { output, .. }) => output,
                _ => return Err(Rejection::UnknownStep(step)),
            };
            emit(
                &mut scratch,
                &mut out,
                Event::MessageCorrelated {
                    step: step.clone(),
                    message_id: message_id.clone(),
                    name: name.clone(),
                    set: map_output(output, payload),
                },
            );
            step
        }
    };
    let next = match def.step(&next_after) {
        Some(s) => s.next.clone(),
        None => return Err(Rejection::UnknownStep(next_after)),
    };
    run_forward(def, scratch, next, out, ctx)
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

/// Enter steps from `next` on until the instance waits or ends.
fn run_forward(
    def: &ProcessDefinition,
    mut scratch: InstanceState,
    mut next: Option<String>,
    mut out: Vec<Event>,
    ctx: Context,
) -> Result<Vec<Event>, Rejection> {
    // A definition is validated, so every path ends; the bound guards against a cycle of send
    // steps, which would otherwise never wait.
    let mut budget = def.steps.len() * 4 + 16;
    while let Some(id) = next.take() {
        budget -= 1;
        if budget == 0 {
            break;
        }
        let step = def
            .step(&id)
            .ok_or_else(|| Rejection::UnknownStep(id.clone()))?;
        let seq = ctx.next_seq + out.len() as i64;
        let event = match &step.kind {
            StepKind::Service { handler, .. } => Event::JobCreated {
                step: id.clone(),
                job_id: derived_id(ctx.instance_id, seq),
                handler: handler.clone(),
            },
            StepKind::Send {
                message,
                to,
                key,
                payload,
            } => {
                let key = message_key(&scratch, key.as_deref());
                let payload = match payload {
                    None => Value::Object(scratch.variables.clone()),
                    Some(vars) => Value::Object(
                        vars.iter()
                            .map(|v| {
                                (
                                    v.clone(),
                                    lookup(&scratch.variables, v)
                                        .cloned()
                                        .unwrap_or(Value::Null),
                                )
                            })
                            .collect(),
                    ),
                };
                next = step.next.clone();
                Event::MessageSent {
                    step: id.clone(),
                    message_id: derived_id(ctx.instance_id, seq),
                    name: message.clone(),
                    kind: if to.is_some() {
                        MessageKind::Command
                    } else {
                        MessageKind::Event
                    },
                    to: to.clone(),
                    key,
                    payload,
                }
            }
            StepKind::Receive { message, key, .. } => Event::MessageAwaited {
                step: id.clone(),
                name: message.clone(),
                key: message_key(&scratch, key.as_deref()),
            },
            StepKind::End => Event::InstanceCompleted { step: id.clone() },
        };
        evolve(&mut scratch, &event);
        out.push(event);
    }
    Ok(out)
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
            })
        }
        Event::JobCompleted { set, .. } | Event::MessageCorrelated { set, .. } => {
            for (k, v) in set {
                state.variables.insert(k.clone(), v.clone());
            }
            state.wait = None;
        }
        Event::JobFailed { error, .. } => state.error = Some(error.clone()),
        Event::MessageSent { .. } => {}
        Event::MessageAwaited { step, name, key } => {
            state.wait = Some(Wait::Message {
                step: step.clone(),
                name: name.clone(),
                key: key.clone(),
            })
        }
        Event::InstanceCompleted { .. } => {
            state.status = Status::Completed;
            state.wait = None;
        }
        Event::InstanceFailed { error, .. } => {
            state.status = Status::Failed;
            state.wait = None;
            state.error = Some(error.clone());
        }
    }
}
