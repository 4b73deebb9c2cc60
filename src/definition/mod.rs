//! The process model: one model with two front ends, the Rust [`ProcessBuilder`] and a JSON document.
//!
//! A [`ProcessDefinition`] is plain data (serde). [`ProcessDefinition::validate`] checks it and
//! names the path of every problem, e.g. `steps[3].next: unknown step "shipp_goods"`.

mod builder;
mod diff;
mod document;
mod io;
mod json;
mod json_events;
mod multi;
mod process;
mod retry;
mod signals;
mod subprocess;
mod task;
#[cfg(test)]
mod tests;
mod timer;
mod validate;
mod validate_boundary;

/// Read a dot path (`order.id`) out of a JSON object (it lives with the expressions, which
/// read variables the same way).
pub use crate::expr::lookup;
pub use builder::{ProcessBuilder, StepBuilder};
pub use diff::{diff, DefinitionDiff};
pub use io::{map_all, Mapping};
pub use multi::{element_id, split_element, MultiInstance, MAX_ELEMENTS};
pub use process::{compile, Process};
pub use retry::RetryPolicy;
pub use subprocess::MAX_NESTING;
pub(crate) use task::{is_person, resolve_date, resolve_people};
pub use task::{Reassign, UserTask, DEFAULT_PRIORITY};
pub use timer::{
    later, literal_date, parse_cycle, parse_duration, StartSchedule, StartTimer, TimerSpec,
    MAX_SPAN,
};
pub(crate) use timer::{parse_cycle_lenient, parse_duration_lenient};
pub(crate) use validate::is_message_name;
pub use validate::{Error, Problem};

use serde::{Deserialize, Serialize};

use json::RawStep;
use json_events::RawGatewayEvent;

/// The largest definition document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;
/// The most steps a definition may have.
pub const MAX_STEPS: usize = 5_000;

/// A process definition: the steps an instance goes through, starting at the first step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessDefinition {
    /// The process id, e.g. `order` (`^[a-z][a-z0-9_]*$`). Versions share it.
    pub process: String,
    /// A message that starts an instance of this process; the message key becomes the
    /// instance's business key and its payload (an object) its variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartTrigger>,
    /// Further messages that start an instance (BPMN's several message start events), each
    /// at its own first step if it names one (`at`); with `start`, each starts an instance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<StartTrigger>,
    /// A signal that starts an instance of this process each time it is broadcast (its
    /// payload becomes the variables, the signal's id the business key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_signal: Option<String>,
    /// A timer that starts instances by itself (a cycle, a date or a duration after the
    /// deploy); see [`StartTimer`]. A process starts on a message, a signal or a timer, not
    /// more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timer: Option<StartTimer>,
    /// The retry policy of service steps that do not set their own. Without one, a failed
    /// handler raises an incident at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Declared variable types (optional). Where present, gateway conditions are type-checked
    /// against them at deploy: a path not declared, or compared with a value of another type,
    /// is refused. Keys are variable paths (`payment.amount`); a path below one declared
    /// `object` is allowed untyped.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub variables: std::collections::BTreeMap<String, crate::expr::Type>,
    /// Whether the business key is unique among this process's running instances (all
    /// versions that say so), and what a second start with a running instance's key gets.
    /// Without it, any number of instances may share a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_business_key: Option<UniqueKey>,
    /// How long an ended instance's history is kept (ISO 8601 duration, e.g. `P30D`), counted
    /// from its end: after that, retention removes its events, activity and instance row
    /// (see [`crate::store::Retention`]). Without it, the engine's default applies
    /// ([`crate::EngineConfig::retention`]). Running instances are never removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
    /// The steps; an instance begins at the first one.
    pub steps: Vec<Step>,
}

/// What a start gets when a running instance of the process has its business key already
/// (see [`ProcessDefinition::unique_business_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UniqueKey {
    /// The running instance's id, as if this start had made it (nothing new is written).
    ReturnExisting,
    /// An [`crate::Error::AlreadyRunning`] error naming the running instance.
    Refuse,
}

/// Where a named business error raised by a service step's handler leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorRoute {
    /// The error code, e.g. `CardExpired`.
    pub code: String,
    /// The step that follows.
    pub next: String,
    /// A variable that gets the error's code when this route is taken (Camunda 7's
    /// `errorCodeVariable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_variable: Option<String>,
    /// A variable that gets the error's message (Camunda 7's `errorMessageVariable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_variable: Option<String>,
}

impl ErrorRoute {
    /// On error `code`, go on at `next`.
    pub fn new(code: impl Into<String>, next: impl Into<String>) -> Self {
        ErrorRoute {
            code: code.into(),
            next: next.into(),
            code_variable: None,
            message_variable: None,
        }
    }
}

/// What starts a process besides an explicit start call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTrigger {
    /// The message name, e.g. `OrderPlaced`.
    pub message: String,
    /// The step an instance it starts begins at (a step of the top level; default: the
    /// first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl StartTrigger {
    /// A start on `message`, at the first step.
    pub fn new(message: impl Into<String>) -> Self {
        StartTrigger {
            message: message.into(),
            at: None,
        }
    }
}

/// One step of a process.
///
/// In JSON a step is one flat object: `{"id": "charge", "type": "service", "handler": "charge",
/// "next": "ship"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawStep", into = "RawStep")]
pub struct Step {
    /// The step id, unique within the definition (`^[a-z][a-z0-9_]*$`).
    pub id: String,
    /// What the step does.
    pub kind: StepKind,
    /// The step that follows; required for every kind but `end`.
    pub next: Option<String>,
    /// Timers attached to a waiting step (receive or service).
    pub boundary: Vec<Boundary>,
    /// How to undo what the step did (service and send steps), run when the instance is
    /// cancelled: compensations of completed steps run in reverse order of completion.
    pub compensate: Option<Compensation>,
    /// Variables added to what the step's job or called process sees (service and call
    /// steps), each from a variable or a literal.
    pub inputs: Vec<Mapping>,
    /// What of the step's result goes into the variables (service, receive, call and user
    /// task steps): when given, only these targets are set (instead of the output rule).
    pub outputs: Vec<Mapping>,
    /// The subprocess this step belongs to (JSON `in`); `None` at the process's top level. A
    /// step leads only to steps of its own subprocess.
    pub within: Option<String>,
    /// Run once per element of a list (service, user task and call steps).
    pub multi: Option<MultiInstance>,
    /// A milestone of the coarse, cross-context view (e.g. `paid`): reached when the step
    /// completes (an end step: when reached), published on the outbox topic
    /// [`MILESTONES_TOPIC`] for a central monitor.
    pub milestone: Option<String>,
}

/// The outbox topic milestones are published on (see [`Step::milestone`]).
pub const MILESTONES_TOPIC: &str = "longrun.milestones";

/// How a completed step is undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, untagged)]
pub enum Compensation {
    /// Run the handler registered under this name (a job, retried under the process's policy).
    Handler {
        /// The handler name.
        handler: String,
    },
    /// Send this message: a command to `to`, or an event.
    Send {
        /// The message name, e.g. `ReleaseGoods`.
        send: String,
        /// The recipient of a command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
}

/// An event attached to a receive or service step while it waits: a timer, or another
/// message (with the step's correlation key) that ends the wait another way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// What triggers it.
    pub on: BoundaryEvent,
    /// Interrupting: the wait ends and the instance goes on at `next`. Non-interrupting: the
    /// step keeps waiting (and listening), and each time the event happens its path `next`
    /// runs beside it and `send` goes out.
    pub interrupting: bool,
    /// Where an interrupting event leads, or the path a non-interrupting one starts.
    pub next: Option<String>,
    /// What a non-interrupting event sends: a message name, and its recipient (a command) or
    /// none (an event).
    pub send: Option<(String, Option<String>)>,
    /// On a user task, what a non-interrupting timer changes about who holds the task
    /// (escalation).
    pub assign: Option<Reassign>,
}

/// What triggers a boundary event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundaryEvent {
    /// A timer (a cycle only on a non-interrupting boundary).
    Timer(TimerSpec),
    /// A message with this name and the step's correlation key, e.g.
    /// `PaymentFailed` on the step waiting for `PaymentReceived`.
    Message(String),
    /// A signal with this name, broadcast to every instance waiting for it, e.g.
    /// `WarehouseClosed`.
    Signal(String),
}

impl From<TimerSpec> for BoundaryEvent {
    fn from(t: TimerSpec) -> Self {
        BoundaryEvent::Timer(t)
    }
}

/// The subscription name a signal wait uses: `signal:<name>` (message names may not start
/// with `signal:`).
pub fn signal_subscription(name: &str) -> String {
    format!("signal:{name}")
}

/// A route out of an exclusive gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The condition, e.g. `payment.amount > 1000`.
    pub when: String,
    /// The step it leads to.
    pub next: String,
}

/// One of the events an event-based gateway waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGatewayEvent", into = "RawGatewayEvent")]
pub struct GatewayEvent {
    /// A message (with the gateway's key) or a timer (not a cycle).
    pub on: BoundaryEvent,
    /// Where a message's payload goes.
    pub output: Output,
    /// The step it leads to.
    pub next: String,
}

/// The kinds of step.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Run an in-process handler registered under `handler`; its result is mapped into the
    /// variables (see [`Output`]).
    Service {
        /// The handler name the engine looks up.
        handler: String,
        /// Where the handler's result goes.
        output: Output,
        /// The handler must finish within this ISO 8601 duration, or the attempt fails.
        timeout: Option<String>,
        /// How failed attempts are retried (default: the process's policy).
        retry: Option<RetryPolicy>,
        /// Business errors the handler may raise, and where each leads (no retries).
        errors: Vec<ErrorRoute>,
        /// Static settings handed to the handler with each job (BPMN's task headers), e.g.
        /// `{"template": "order-confirmation"}`; [`crate::JobContext::headers`].
        headers: std::collections::BTreeMap<String, String>,
    },
    /// Wait: for a duration, or until a date held by a variable.
    Timer {
        /// When the wait ends (`After` or `Until`).
        timer: TimerSpec,
    },
    /// Emit a message through the outbox: a command to one recipient (`to` set) or an event
    /// published to whoever listens (`to` absent).
    Send {
        /// The message name, e.g. `RetrievePayment`.
        message: String,
        /// The recipient of a command; `None` publishes an event.
        to: Option<String>,
        /// The variable path whose value is the message key; default: the business key.
        key: Option<String>,
        /// The variables sent as payload; default: all of them.
        payload: Option<Vec<String>>,
    },
    /// Wait for a message by name, correlated by a key taken from the variables.
    Receive {
        /// The message name, e.g. `PaymentReceived`.
        message: String,
        /// The variable path whose value is the correlation key; default: the business key.
        key: Option<String>,
        /// Where the message payload goes.
        output: Output,
    },
    /// Undo the completed steps that declare a compensation, newest first, then go on at
    /// `next` (a modelled "compensate" path, e.g. when an order is given up).
    Compensate,
    /// An exclusive gateway: the first route whose condition holds is taken, else `default`.
    /// Conditions are in the [`expr`](crate::expr) language.
    Exclusive {
        /// The conditional routes, tried in order.
        routes: Vec<Route>,
        /// Where to go when no condition holds; without one, that fails the instance.
        default: Option<String>,
    },
    /// An inclusive gateway (fork): every route whose condition holds is taken, concurrently
    /// (the default when none holds), and the `inclusive_join` its routes lead to waits for
    /// exactly the branches it started.
    Inclusive {
        /// The conditional routes.
        routes: Vec<Route>,
        /// Where to go when no condition holds; without one, that fails the instance.
        default: Option<String>,
    },
    /// The join of an inclusive gateway: goes on to `next` once every branch its fork started
    /// has arrived.
    InclusiveJoin,
    /// A parallel fork: every branch runs, concurrently.
    Parallel {
        /// The first step of each branch.
        branches: Vec<String>,
    },
    /// A parallel join: goes on to `next` once a branch has arrived from each of its incoming
    /// paths (once per step, boundary or route that leads to it).
    Join,
    /// An event-based gateway: waits for whichever of its events comes first; the others are
    /// withdrawn in the same transaction.
    EventGateway {
        /// The correlation key of its messages (a variable path; default: the business key).
        key: Option<String>,
        /// The events, each with the step it leads to.
        events: Vec<GatewayEvent>,
    },
    /// A call activity: starts an instance of another process and waits for it to end.
    Call {
        /// The process to start (its latest version).
        process: String,
        /// The variables handed to the child (default: all).
        input: Option<Vec<String>>,
        /// Where the child's final variables go.
        output: Output,
        /// Business errors the child may end with (an `error` end step), and where each leads.
        errors: Vec<ErrorRoute>,
    },
    /// The instance ends with a business error (BPMN's error end event): it fails with the
    /// code, and a parent's call step that routes the code takes that path instead of failing.
    Error {
        /// The error code, e.g. `CardDeclined`.
        code: String,
    },
    /// The instance completes here.
    End,
    /// The instance completes here at once, ending every other branch (BPMN's terminate end
    /// event): their waits are withdrawn and their timers cancelled.
    Terminate,
    /// Work for a person: the instance waits until someone completes the task (see
    /// [`UserTask`]); boundary timers and messages apply as on any waiting step.
    UserTask(UserTask),
    /// Throw a signal: it is broadcast to every instance waiting for it (and starts the
    /// processes that start on it), after this transition commits; the instance goes on.
    Signal {
        /// The signal's name, e.g. `WarehouseClosed`.
        signal: String,
    },
    /// An embedded subprocess: the steps that say they are `in` it run from `start` until
    /// every branch inside has ended, then the instance goes on at `next`. Its boundary
    /// events end everything inside; its error routes catch an `error` end step inside (or a
    /// business error no step inside routes).
    Subprocess {
        /// The first step inside.
        start: String,
        /// Business errors raised inside, and where each leads.
        errors: Vec<ErrorRoute>,
    },
    /// An event subprocess: not reached by any flow, it starts when its event happens while
    /// the scope it is `in` (the process, or a subprocess) runs. Its event is its one entry
    /// in `boundary` (a message, a timer or a signal; interrupting or not), or an error
    /// `code` raised in the scope that nothing closer catches. Interrupting, it ends
    /// everything else in the scope first, and the scope completes when it does; not
    /// interrupting, it runs beside the rest, one run at a time.
    EventSubprocess {
        /// The first step inside.
        start: String,
        /// The business error that starts it (instead of a boundary event).
        code: Option<String>,
    },
    /// Wait for a signal (any instance's throw, or [`crate::Engine::signal`]).
    WaitSignal {
        /// The signal's name.
        signal: String,
        /// Where the signal's payload goes.
        output: Output,
    },
}

impl StepKind {
    /// The `type` name used in JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            StepKind::Service { .. } => "service",
            StepKind::Timer { .. } => "timer",
            StepKind::Send { .. } => "send",
            StepKind::Receive { .. } => "receive",
            StepKind::Compensate => "compensate",
            StepKind::Exclusive { .. } => "exclusive",
            StepKind::Parallel { .. } => "parallel",
            StepKind::Inclusive { .. } => "inclusive",
            StepKind::InclusiveJoin => "inclusive_join",
            StepKind::Join => "join",
            StepKind::EventGateway { .. } => "event_gateway",
            StepKind::Call { .. } => "call",
            StepKind::Error { .. } => "error",
            StepKind::End => "end",
            StepKind::Terminate => "terminate",
            StepKind::UserTask(_) => "user_task",
            StepKind::Signal { .. } => "signal",
            StepKind::WaitSignal { .. } => "wait_signal",
            StepKind::Subprocess { .. } => "subprocess",
            StepKind::EventSubprocess { .. } => "event_subprocess",
        }
    }
}

/// Where a result (handler output or message payload) goes in the instance variables.
///
/// In JSON: no `output` field means [`Output::Merge`]; `"output": "payment"` means
/// `Output::Variable("payment")`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Output {
    /// An object result is merged into the variables field by field; anything else is dropped.
    #[default]
    Merge,
    /// The whole result is stored under this variable name.
    Variable(String),
}

impl Output {
    fn into_raw(self) -> Option<String> {
        match self {
            Output::Merge => None,
            Output::Variable(v) => Some(v),
        }
    }
    fn from_raw(v: Option<String>) -> Self {
        v.map(Output::Variable).unwrap_or_default()
    }
}

impl Step {
    /// Every step this one can lead to: its next, its boundary events', error routes',
    /// branches', routes' and gateway events' targets (with repeats, one per path).
    pub fn targets(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.next.iter().map(String::as_str).collect();
        out.extend(self.boundary.iter().filter_map(|b| b.next.as_deref()));
        match &self.kind {
            StepKind::Service { errors, .. } | StepKind::Call { errors, .. } => {
                out.extend(errors.iter().map(|e| e.next.as_str()))
            }
            StepKind::Subprocess { start, errors } => {
                out.push(start.as_str());
                out.extend(errors.iter().map(|e| e.next.as_str()))
            }
            StepKind::EventSubprocess { start, .. } => out.push(start.as_str()),
            StepKind::Exclusive { routes, default } | StepKind::Inclusive { routes, default } => {
                out.extend(routes.iter().map(|r| r.next.as_str()));
                out.extend(default.as_deref());
            }
            StepKind::Parallel { branches } => out.extend(branches.iter().map(String::as_str)),
            StepKind::EventGateway { events, .. } => {
                out.extend(events.iter().map(|e| e.next.as_str()))
            }
            _ => {}
        }
        out
    }
}
