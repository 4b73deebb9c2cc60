//! An instance's state: the fold of its events, and what it waits for.
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::definition::{BoundaryEvent, Process, StepKind};

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
    /// A user task: someone completes it.
    Task {
        /// The user task step.
        step: String,
        /// The task.
        task_id: Uuid,
        /// Who holds it, to whom it is offered, and when it is due.
        task: OpenTask,
    },
    /// An embedded subprocess runs: its boundary events listen while the steps inside it
    /// (each with a wait of its own) run.
    Scope {
        /// The subprocess step.
        step: String,
    },
    /// An event subprocess whose event may start it (its scope runs).
    Armed {
        /// The event subprocess step.
        step: String,
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

/// What an instance's work is traced under across contexts: a trace key (the business key by
/// default, or the one of the message that started it) and a W3C `traceparent`, which every
/// message it sends carries and an instance it starts (a child, or by a message) inherits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The key a trace is searched by, e.g. the order id.
    pub key: String,
    /// The W3C trace context (`00-<trace id>-<parent id>-01`).
    pub traceparent: String,
}

impl Trace {
    /// A new trace for instance `instance_id` under `key`: its trace id is the instance id,
    /// so the same start always yields the same trace (decisions stay reproducible).
    pub fn new(key: &str, instance_id: Uuid) -> Self {
        let hex = instance_id.simple().to_string();
        Trace {
            key: key.to_string(),
            traceparent: format!("00-{hex}-{}-01", &hex[16..]),
        }
    }

    /// What is wrong with a trace a caller hands in, if anything: a key of 1 to 1000 bytes
    /// without NUL, a W3C `traceparent`.
    pub fn problem(&self) -> Option<String> {
        if self.key.is_empty() || self.key.len() > 1000 || self.key.contains('\0') {
            return Some("invalid trace key: non-empty, at most 1000 bytes, without NUL".into());
        }
        if !Trace::valid_traceparent(&self.traceparent) {
            return Some(format!(
                "invalid traceparent {:?}: expected 00-<32 hex digits>-<16 hex digits>-<2 hex digits> (W3C trace context)",
                self.traceparent
            ));
        }
        None
    }

    /// Whether `traceparent` has the W3C form: `00-`, 32 hex digits (not all zero), `-`, 16
    /// hex digits (not all zero), `-`, 2 hex digits.
    pub fn valid_traceparent(traceparent: &str) -> bool {
        let parts: Vec<&str> = traceparent.split('-').collect();
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
        parts.len() == 4
            && parts[0] == "00"
            && hex(parts[1], 32)
            && nonzero(parts[1])
            && hex(parts[2], 16)
            && nonzero(parts[2])
            && hex(parts[3], 2)
    }
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
            | Wait::Task { step, .. }
            | Wait::Scope { step }
            | Wait::Armed { step }
            | Wait::Child { step, .. } => step,
        }
    }
}

/// An open user task as the instance holds it (the `tasks` table is written from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTask {
    /// Who holds it; none while it waits for a claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Users who may claim it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_users: Vec<String>,
    /// Groups whose members may claim it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub candidate_groups: Vec<String>,
    /// When it is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// When to look at it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up_at: Option<DateTime<Utc>>,
    /// From 0 to 100.
    pub priority: u8,
    /// The form reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<String>,
    /// When it was created (engine clock).
    pub created_at: DateTime<Utc>,
}

/// The state of one instance, rebuilt by folding its events with [`evolve`](super::evolve).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    /// Lifecycle status.
    pub status: Status,
    /// The business key (e.g. the order id).
    pub business_key: String,
    /// What its work is traced under (none for instances started before traces were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
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
    /// The business error code it ended with, after an error end step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
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
    /// For inclusive joins: how many branches their fork started (the arrivals they wait for).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub join_expected: BTreeMap<String, u32>,
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
    /// While compensations run for a compensate step inside a subprocess: that subprocess
    /// (only its own completed steps are undone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate_scope: Option<String>,
    /// Multi-instance steps that run: their elements and the results so far.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub multi: BTreeMap<String, MultiState>,
}

/// A multi-instance step while its elements run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiState {
    /// The list it runs over, as it was when the step was entered.
    pub items: Vec<Value>,
    /// Each element's result (`null` until it completes).
    pub results: Vec<Value>,
    /// How many elements completed.
    pub done: usize,
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
    /// Whether a branch runs (a wait other than an armed event subprocess's).
    pub fn branches_run(&self) -> bool {
        self.waits.iter().any(|w| !matches!(w, Wait::Armed { .. }))
    }

    /// The wait at `step`, if a branch waits there.
    pub fn wait_at(&self, step: &str) -> Option<&Wait> {
        self.waits.iter().find(|w| w.step() == step)
    }

    /// The correlation keys the subscriptions of the wait at `step` may be under: the key of
    /// a message or gateway wait, the business key (the boundary messages of any other wait
    /// listen under it) and none (a signal; such a subscription is in the instance's own
    /// bucket). Each names a bucket the wait's subscriptions are deleted from when it ends.
    pub fn subscription_keys(&self, step: &str) -> Vec<String> {
        let mut keys = vec![String::new(), self.business_key.clone()];
        if let Some(Wait::Message { key, .. } | Wait::Gateway { key, .. }) = self.wait_at(step) {
            keys.push(key.clone());
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The wait for job `job_id`.
    pub fn job_wait(&self, job_id: Uuid) -> Option<&Wait> {
        self.waits
            .iter()
            .find(|w| matches!(w, Wait::Job { job_id: j, .. } if *j == job_id))
    }

    /// The open user task `task_id`: its step and what it holds.
    pub fn task(&self, task_id: Uuid) -> Option<(&str, &OpenTask)> {
        self.waits.iter().find_map(|w| match w {
            Wait::Task {
                step,
                task_id: t,
                task,
            } if *t == task_id => Some((step.as_str(), task)),
            _ => None,
        })
    }

    /// The variables element `id` (`step#index`) of a multi-instance step sees besides the
    /// instance's: its element under the step's element variable, and `loop_counter` from 1.
    /// Empty for a plain step.
    pub fn element_variables(&self, def: &Process, id: &str) -> Map<String, Value> {
        let mut out = Map::new();
        // Its own step's element, or the element of the multi-instance subprocess it runs in.
        let Some((base, index)) = def.element_scope(id) else {
            return out;
        };
        let (Some(m), Some(s)) = (
            def.step(base).and_then(|s| s.multi.as_ref()),
            self.multi.get(base),
        ) else {
            return out;
        };
        out.insert(
            m.element_variable().to_string(),
            s.items.get(index).cloned().unwrap_or(Value::Null),
        );
        out.insert("loop_counter".into(), (index + 1).into());
        out
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
        // An element's step has the boundary events of the whole multi-instance step: they
        // are the step's own wait's.
        if crate::definition::split_element(step).is_some() {
            return out;
        }
        // A running event subprocess no longer listens for its event.
        if matches!(w, Wait::Scope { .. })
            && def
                .step(step)
                .is_some_and(|s| matches!(s.kind, StepKind::EventSubprocess { .. }))
        {
            return out;
        }
        let Some(step) = def.step(step) else {
            return out;
        };
        for b in &step.boundary {
            match &b.on {
                BoundaryEvent::Message(m) => out.push((m.clone(), key.clone())),
                BoundaryEvent::Signal(s) => {
                    out.push((crate::definition::signal_subscription(s), String::new()))
                }
                BoundaryEvent::Timer(_) => {}
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
            trace: None,
            variables: Map::new(),
            waits: Vec::new(),
            error: None,
            error_code: None,
            timers: Vec::new(),
            incidents: Vec::new(),
            joins: BTreeMap::new(),
            join_expected: BTreeMap::new(),
            passes: BTreeMap::new(),
            parent: None,
            compensable: Vec::new(),
            compensating: None,
            compensate_then: None,
            paused: false,
            compensate_scope: None,
            multi: BTreeMap::new(),
        }
    }
}
