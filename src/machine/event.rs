//! The events of an instance stream: the truth from which everything else is projected.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Whether an outbound message is a command (one recipient) or an event (any listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Intent, sent to one named recipient.
    Command,
    /// A fact, published to whoever listens.
    Event,
}

impl MessageKind {
    /// The name stored in `outbox.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Command => "command",
            MessageKind::Event => "event",
        }
    }
}

/// One event in an instance's stream. Stored as JSON in `events.data`, with its `type` also in
/// `events.event_type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// The instance started.
    InstanceStarted {
        /// The process id.
        process: String,
        /// The business key.
        business_key: String,
        /// The initial variables.
        variables: Map<String, Value>,
        /// The inbound message that started it, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<String>,
        /// The instance and call step that started it as a child, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<super::Parent>,
        /// What its work is traced under (absent in streams written before traces).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace: Option<super::Trace>,
    },
    /// A service step was entered: a job for `handler` was created.
    JobCreated {
        /// The step.
        step: String,
        /// The job id, the handler's idempotency key.
        job_id: Uuid,
        /// The handler name.
        handler: String,
    },
    /// The handler finished; `set` is what went into the variables.
    JobCompleted {
        /// The step.
        step: String,
        /// The job id.
        job_id: Uuid,
        /// Variables set from the result.
        set: Map<String, Value>,
    },
    /// The handler failed.
    JobFailed {
        /// The step.
        step: String,
        /// The job id.
        job_id: Uuid,
        /// The error text.
        error: String,
    },
    /// A message went into the outbox.
    MessageSent {
        /// The send step.
        step: String,
        /// The outbound message id, stable: the receiver's idempotency key.
        message_id: Uuid,
        /// The message name.
        name: String,
        /// Command or event.
        kind: MessageKind,
        /// The recipient of a command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The message key.
        key: String,
        /// The payload.
        payload: Value,
    },
    /// The instance waits for a message (a subscription was opened).
    MessageAwaited {
        /// The receive step.
        step: String,
        /// The message name.
        name: String,
        /// The correlation key.
        key: String,
    },
    /// An inbound message was correlated; `set` is what went into the variables.
    MessageCorrelated {
        /// The receive step.
        step: String,
        /// The inbound message id.
        message_id: String,
        /// The message name.
        name: String,
        /// Variables set from the payload.
        set: Map<String, Value>,
    },
    /// A timer started.
    TimerScheduled {
        /// The step it belongs to.
        step: String,
        /// The timer id.
        timer_id: Uuid,
        /// What it belongs to.
        #[serde(flatten)]
        kind: super::TimerKind,
        /// When it is due (engine clock).
        due_at: chrono::DateTime<chrono::Utc>,
        /// How many more times a cycle fires after this one.
        #[serde(default)]
        remaining: u32,
    },
    /// A timer fired.
    TimerFired {
        /// The step it belongs to.
        step: String,
        /// The timer id.
        timer_id: Uuid,
        /// What it belongs to.
        #[serde(flatten)]
        kind: super::TimerKind,
    },
    /// A timer was cancelled because the wait it guarded ended first.
    TimerCancelled {
        /// The step it belonged to.
        step: String,
        /// The timer id.
        timer_id: Uuid,
    },
    /// An interrupting boundary event ended the step's wait (its job or subscriptions are
    /// withdrawn).
    WaitInterrupted {
        /// The step whose wait ended.
        step: String,
        /// What ended it: `timer <id>` or `message <name>`.
        by: String,
    },
    /// The waiting step also listens for a boundary message (a subscription was opened).
    BoundaryMessageAwaited {
        /// The waiting step.
        step: String,
        /// The message name.
        name: String,
        /// The correlation key.
        key: String,
    },
    /// A non-interrupting boundary message or signal arrived while the step waits: its
    /// variables are set, its path (if any) starts beside the step, which keeps waiting and
    /// keeps listening for the next one.
    BoundaryMessageReceived {
        /// The waiting step.
        step: String,
        /// The inbound message id (for a signal, the signal's id).
        message_id: String,
        /// The message name (`signal:<name>` for a signal).
        name: String,
        /// Variables set from the payload.
        set: Map<String, Value>,
    },
    /// A step marked as a milestone completed: published on the outbox topic
    /// `longrun.milestones` for a central monitor.
    MilestoneReached {
        /// The step.
        step: String,
        /// The milestone's name, e.g. `paid`.
        milestone: String,
        /// The id of the outbox message that publishes it.
        message_id: Uuid,
    },
    /// A service step's handler did not finish in time; its job is withdrawn.
    JobTimedOut {
        /// The step.
        step: String,
        /// The job id.
        job_id: Uuid,
        /// What is recorded as the error.
        error: String,
    },
    /// A failed attempt will be retried: the job runs again at `run_at`, with the same id.
    JobRetryScheduled {
        /// The step.
        step: String,
        /// The job id (the idempotency key stays the same).
        job_id: Uuid,
        /// The attempt that will run, from 2 (1 after an operator's retry).
        attempt: u32,
        /// When it may run (engine clock).
        run_at: chrono::DateTime<chrono::Utc>,
    },
    /// The step's attempts are used up: the instance stays there for an operator.
    IncidentRaised {
        /// The step.
        step: String,
        /// The job id.
        job_id: Uuid,
        /// The last error.
        error: String,
        /// Attempts made.
        attempts: u32,
        /// When (engine clock).
        at: chrono::DateTime<chrono::Utc>,
    },
    /// An operator retried the step of an incident, after setting `set` in the variables.
    IncidentResolved {
        /// The step.
        step: String,
        /// Variables set.
        set: Map<String, Value>,
        /// Who asked (from the caller, e.g. a console's user header); empty if not said.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// The handler raised a business error the step routes: the instance takes that path.
    BusinessErrorCaught {
        /// The step.
        step: String,
        /// The error code.
        code: String,
        /// Variables set from the error (its route's code and message variables).
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        set: Map<String, Value>,
    },
    /// A step that declares a compensation completed: it is undone if the instance is
    /// cancelled later.
    StepCompensable {
        /// The step.
        step: String,
    },
    /// Compensations of completed steps start, newest first (on a cancel, or at a
    /// compensate step).
    CompensationStarted {
        /// Why: a cancel's reason, or `step <id>`.
        reason: String,
        /// Where the instance goes on afterwards (a compensate step's next); none after a
        /// cancel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// Who asked for the cancel (from the caller, e.g. a console's user header); empty if not said.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
        /// For a compensate step inside a subprocess: that subprocess, whose own completed
        /// steps are undone (none: every completed step).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
    },
    /// All compensations ran; the instance goes on at `then`.
    CompensationFinished {
        /// The next step.
        then: String,
    },
    /// A step's compensation finished (its message went out, or its handler completed).
    StepCompensated {
        /// The step.
        step: String,
    },
    /// An operator paused the instance (its job, timers and subscriptions are withdrawn).
    InstancePaused {
        /// Who asked (from the caller, e.g. a console's user header); empty if not said.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// An operator resumed it (they come back).
    InstanceResumed {
        /// Who asked (from the caller, e.g. a console's user header); empty if not said.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// The instance was cancelled.
    InstanceCancelled {
        /// Why.
        reason: String,
        /// Who asked (from the caller, e.g. a console's user header); empty if not said.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// The instance reached an end step.
    InstanceCompleted {
        /// The end step.
        step: String,
    },
    /// The instance failed at a step.
    InstanceFailed {
        /// The step.
        step: String,
        /// The error text.
        error: String,
    },
    /// A step that a loop leads back to was entered: `pass` counts its entries from 1, so the
    /// history tells each pass apart.
    StepEntered {
        /// The step.
        step: String,
        /// Which entry this is, from 1.
        pass: u32,
    },
    /// An exclusive gateway chose a route.
    GatewayDecided {
        /// The gateway.
        step: String,
        /// The condition that held, or none when the default was taken.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        condition: Option<String>,
        /// The step taken.
        next: String,
    },
    /// A parallel fork started its branches.
    ParallelForked {
        /// The fork.
        step: String,
        /// The first step of each branch.
        branches: Vec<String>,
    },
    /// An error end step: the instance ends with this business error (an `InstanceFailed`
    /// follows); a parent's call step that routes the code takes that path.
    ErrorThrown {
        /// The error end step.
        step: String,
        /// The error code.
        code: String,
    },
    /// An inclusive gateway started the branches whose conditions held (or its default), and
    /// its join waits for exactly those.
    InclusiveForked {
        /// The fork.
        step: String,
        /// The first step of each branch taken.
        branches: Vec<String>,
        /// The inclusive join that waits for them.
        join: String,
    },
    /// A branch arrived at a join; at `arrived == expected` the join goes on.
    JoinArrived {
        /// The join.
        step: String,
        /// Branches arrived so far, this one included.
        arrived: u32,
        /// Branches it waits for.
        expected: u32,
    },
    /// A branch reached an end step while other branches still run.
    BranchEnded {
        /// The end step.
        step: String,
    },
    /// An event-based gateway started waiting for the first of its events.
    GatewayEntered {
        /// The gateway.
        step: String,
        /// The correlation key of its messages.
        key: String,
    },
    /// A call activity started a child instance.
    ChildStarted {
        /// The call step.
        step: String,
        /// The child instance.
        child_id: Uuid,
        /// The child's process.
        process: String,
        /// The variables handed to the child.
        variables: Map<String, Value>,
    },
    /// An operator moved the instance to another version of its process: its waits, timers,
    /// joins and completed steps are renamed by `steps` (old id -> new id, only those that
    /// change), jobs' handlers changed by `handlers` (new step id -> handler), and `set` went
    /// into the variables.
    Migrated {
        /// The version it ran on.
        from_version: i32,
        /// The version it runs on now.
        to_version: i32,
        /// Renamed steps, old id -> new id.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        steps: std::collections::BTreeMap<String, String>,
        /// Handlers of waiting jobs that changed, by (new) step id.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        handlers: std::collections::BTreeMap<String, String>,
        /// Variables set by the migration.
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        set: Map<String, Value>,
        /// Who or what asked for it.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        by: String,
    },
    /// A signal step threw a signal: it is broadcast to every instance waiting for it once
    /// this transition commits.
    SignalThrown {
        /// The step.
        step: String,
        /// The broadcast's id.
        signal_id: Uuid,
        /// The signal's name.
        name: String,
    },
    /// A user task step was entered: the task is open.
    TaskCreated {
        /// The step.
        step: String,
        /// The task id.
        task_id: Uuid,
        /// Who holds it from the start.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
        /// Users who may claim it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        candidate_users: Vec<String>,
        /// Groups whose members may claim it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        candidate_groups: Vec<String>,
        /// When it is due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<chrono::DateTime<chrono::Utc>>,
        /// When to look at it again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up_at: Option<chrono::DateTime<chrono::Utc>>,
        /// From 0 to 100.
        priority: u8,
        /// The form reference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        form: Option<String>,
        /// When (engine clock).
        at: chrono::DateTime<chrono::Utc>,
    },
    /// Someone took the task (`forced`: from someone else, by an operator).
    TaskClaimed {
        /// The step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// Who holds it now.
        assignee: String,
        /// Who held it before, when the claim was forced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
        /// Who asked.
        by: String,
    },
    /// The task was released: it waits for a claim again.
    TaskUnclaimed {
        /// The step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// Who held it.
        previous: String,
        /// Who asked.
        by: String,
    },
    /// The task was given to someone else or offered to other people (a delegation, an
    /// operator, or an escalation timer: `by` is then `timer <id>`). Fields left out stay.
    TaskAssigned {
        /// The step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// Who holds it now (none: released).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignee: Option<String>,
        /// The new candidate users, if they changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate_users: Option<Vec<String>>,
        /// The new candidate groups, if they changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        candidate_groups: Option<Vec<String>>,
        /// Who asked.
        by: String,
    },
    /// The task's dates or priority changed (the values after the change).
    TaskUpdated {
        /// The step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// When it is due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due_at: Option<chrono::DateTime<chrono::Utc>>,
        /// When to look at it again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up_at: Option<chrono::DateTime<chrono::Utc>>,
        /// From 0 to 100.
        priority: u8,
        /// Who asked.
        by: String,
    },
    /// Someone completed the task; `set` is what went into the variables.
    TaskCompleted {
        /// The step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// Variables set from the completion.
        set: Map<String, Value>,
        /// Who completed it.
        by: String,
    },
    /// A multi-instance step was entered: it runs once per element of `items`.
    MultiInstanceStarted {
        /// The step.
        step: String,
        /// The list, as it was when the step was entered.
        items: Vec<Value>,
    },
    /// One element of a multi-instance step completed.
    ElementCompleted {
        /// The step.
        step: String,
        /// The element's position, from 0.
        index: usize,
        /// What of its result goes into the output collection.
        result: Value,
    },
    /// Every element of a multi-instance step completed (or its completion condition held);
    /// `set` is what went into the variables (the output collection).
    MultiInstanceCompleted {
        /// The step.
        step: String,
        /// Variables set.
        set: Map<String, Value>,
    },
    /// An event subprocess may now start: its scope runs.
    EventSubprocessArmed {
        /// The event subprocess.
        step: String,
    },
    /// An event subprocess's event happened: its steps run from its start (an interrupting
    /// one ended everything else in its scope first).
    EventSubprocessStarted {
        /// The event subprocess.
        step: String,
    },
    /// An embedded subprocess began: the steps inside it run from its start.
    SubprocessEntered {
        /// The subprocess step.
        step: String,
    },
    /// Every branch inside an embedded subprocess ended: the instance goes on after it.
    SubprocessCompleted {
        /// The subprocess step.
        step: String,
    },
    /// The child instance of a call step completed; `set` is what went into the variables.
    ChildCompleted {
        /// The call step.
        step: String,
        /// The child instance.
        child_id: Uuid,
        /// Variables set from the child's final variables.
        set: Map<String, Value>,
    },
}
