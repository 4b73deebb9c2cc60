//! What happens to an instance (inputs), the context of a decision, refusals and derived ids.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::*;

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
        /// The message that started it, when one did: a further start may name the step it
        /// begins at.
        start_message: Option<String>,
        /// The trace it continues (its starter's); `None`: a new one under its business key.
        trace: Option<Trace>,
    },
    /// A child instance started by a call step ended.
    ChildEnded {
        /// The child instance.
        child_id: Uuid,
        /// How it ended.
        status: Status,
        /// Its final variables.
        variables: Map<String, Value>,
        /// The business error code it ended with (an error end step), if any.
        code: Option<String>,
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
    /// Someone acts on one of the instance's open user tasks.
    Task {
        /// The task.
        task_id: Uuid,
        /// What they do.
        action: TaskAction,
        /// Who (a user name; recorded in the event).
        by: String,
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

/// What someone does with an open user task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TaskAction {
    /// Take it (the one acting becomes its assignee). Refused while someone else holds it,
    /// unless `force` (an operator's or supervisor's claim).
    Claim {
        /// Take it from whoever holds it.
        force: bool,
    },
    /// Release it to its candidates. Refused while someone else holds it, unless `force`.
    Unclaim {
        /// Release it from whoever holds it.
        force: bool,
    },
    /// Give it to someone (delegate), or change to whom it is offered. Refused while someone
    /// other than the one acting holds it, unless `force`.
    Assign {
        /// The new assignee (none releases it).
        assignee: Option<String>,
        /// New candidate users, if they change.
        candidate_users: Option<Vec<String>>,
        /// New candidate groups, if they change.
        candidate_groups: Option<Vec<String>>,
        /// Act whoever holds it.
        force: bool,
    },
    /// Change its dates or priority (each `Some` changes; `Some(None)` clears a date).
    Update {
        /// The new due date.
        due_at: Option<Option<DateTime<Utc>>>,
        /// The new follow-up date.
        follow_up_at: Option<Option<DateTime<Utc>>>,
        /// The new priority (0 to 100).
        priority: Option<u8>,
    },
    /// Complete it with these variables (checked against the task's declared fields).
    /// Refused while someone else holds it, unless `force`.
    Complete {
        /// What the person supplies.
        variables: Map<String, Value>,
        /// Complete it whoever holds it.
        force: bool,
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
    /// The task is no longer open (completed, or withdrawn with its step or instance).
    #[error("task {0} is not open (it was completed, or its step or instance ended)")]
    TaskNotOpen(Uuid),
    /// Someone else holds the task.
    #[error(
        "task {task_id} is held by {assignee}; only they can do this, or an operator with force"
    )]
    TaskHeld {
        /// The task.
        task_id: Uuid,
        /// Who holds it.
        assignee: String,
    },
    /// What was asked of a task is not valid (bad variables, a priority out of range, no
    /// one named).
    #[error("task {task_id}: {problem}")]
    TaskInput {
        /// The task.
        task_id: Uuid,
        /// What is wrong.
        problem: String,
    },
}

/// Namespace for ids derived from (instance, sequence).
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f_6e67_7275_6e00_8000_0000_0000_0001);

/// The stable id of whatever the event at `seq` of `instance` creates (a job, a timer, a task,
/// an outbound message, a child instance): the same transition always yields the same id. It
/// is in the instance's bucket ([`crate::bucket`]), so a row keyed by it is found in one.
pub fn derived_id(instance: Uuid, seq: i64) -> Uuid {
    let mut name = [0u8; 24];
    name[..16].copy_from_slice(instance.as_bytes());
    name[16..].copy_from_slice(&seq.to_be_bytes());
    crate::bucket::in_bucket(
        Uuid::new_v5(&ID_NAMESPACE, &name),
        crate::bucket::bucket_of(instance),
    )
}
