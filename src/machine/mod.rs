//! The pure process state machine: `decide(definition, state, input) -> events` and
//! `evolve(state, event) -> state`. No I/O, no clock, no randomness: the time and the ids come
//! in through [`Context`] and the [`Input`].
//!
//! Transitions, for one instance (each row is checked by a test, `machine/table.rs`, against a
//! small process of that shape: the events are exactly those listed, or those followed by
//! running forward):
//!
//! | state | input | events | then |
//! |---|---|---|---|
//! | (new) | `Start` | `InstanceStarted` | run forward |
//! | waiting for job J | `JobCompleted(J)` | `JobCompleted` | run forward |
//! | waiting for job J, attempts left | `JobFailed(J)` | `JobFailed`, `JobRetryScheduled` | waits |
//! | waiting for job J, no attempts left | `JobFailed(J)` | `JobFailed`, `IncidentRaised` | waits |
//! | waiting for job J, the error's code routed | `JobFailed(J, code)` | `JobFailed`, `BusinessErrorCaught` | run forward |
//! | waiting for job J | `Fault(J)` | `JobFailed`, `IncidentRaised` | waits |
//! | running | `Fault` | `InstanceFailed` | ends |
//! | incident at job J | `Retry` | `IncidentResolved`, `JobRetryScheduled` | waits |
//! | running | `Pause` | `InstancePaused` | waits |
//! | paused | `Resume` | `InstanceResumed` | waits |
//! | waiting, nothing to undo | `Cancel` | `WaitInterrupted`, `InstanceCancelled` | ends |
//! | waiting, completed steps to undo | `Cancel` | `WaitInterrupted`, `CompensationStarted`, `JobCreated` | waits |
//! | waiting for message M/K | `Message(M)` | `MessageCorrelated` | run forward |
//! | waiting, boundary message B | `Message(B)` | `WaitInterrupted`, `MessageCorrelated` | run forward |
//! | waiting at an event gateway | `Message(M)` | `MessageCorrelated`, `TimerCancelled` | run forward |
//! | waiting at a timer step | `TimerFired(T)` | `TimerFired` | run forward |
//! | waiting, interrupting boundary timer | `TimerFired(T)` | `TimerFired`, `WaitInterrupted` | run forward |
//! | waiting, non-interrupting boundary timer | `TimerFired(T)` | `TimerFired`, `MessageSent` | waits |
//! | waiting for job J with a timeout | `TimerFired(timeout)` | `TimerFired`, `JobTimedOut`, `IncidentRaised` | waits |
//! | waiting for child C | `ChildEnded(C)` | `ChildCompleted` | run forward |
//! | waiting at user task T | `Task(T, Claim)` | `TaskClaimed` | waits |
//! | waiting at user task T | `Task(T, Complete)` | `TaskCompleted` | run forward |
//! | waiting for signal S | `Message(signal:S)` | `MessageCorrelated` | run forward |
//!
//! "Run forward" enters steps until one waits: a service step emits `JobCreated` and waits; a
//! send step emits `MessageSent` and goes on; a receive step emits `MessageAwaited` and waits;
//! a timer step emits `TimerScheduled` and waits; a user task step emits `TaskCreated` and
//! waits; a signal step emits `SignalThrown` and goes on; a `wait_signal` step emits
//! `MessageAwaited` (for `signal:<name>`) and waits; an inclusive gateway emits
//! `InclusiveForked` and runs the branches taken; an end step emits `InstanceCompleted`. A
//! waiting step's boundary timers and timeout are scheduled as it is entered
//! (`TimerScheduled`) and cancelled as its wait ends (`TimerCancelled`), in the same decision.

mod decide;
mod describe;
mod effects;
mod event;
mod event_meta;
mod evolve;
mod input;
mod migrate;
mod state;
#[cfg(test)]
mod table;
#[cfg(test)]
mod tests;
mod upcast;

pub use decide::decide;
pub use effects::{effects, Effect};
pub use event::{Event, MessageKind};
pub use evolve::evolve;
pub use input::{derived_id, Context, Input, Rejection, TaskAction};
pub use migrate::{plan_migration, MigrationPlan};
pub use state::{
    ActiveTimer, Incident, InstanceState, MultiState, OpenTask, Parent, Status, TimerKind, Trace,
    Wait,
};
pub use upcast::{upcast, UpcastError, EVENT_SCHEMA};
