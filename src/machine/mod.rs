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

mod decide;
mod describe;
mod effects;
mod event;
mod evolve;
mod input;
mod migrate;
mod state;
#[cfg(test)]
mod tests;
mod upcast;

pub use decide::decide;
pub use effects::{effects, Effect};
pub use event::{Event, MessageKind};
pub use evolve::evolve;
pub use input::{derived_id, Context, Input, Rejection};
pub use migrate::{plan_migration, MigrationPlan};
pub use state::{ActiveTimer, Incident, InstanceState, Parent, Status, TimerKind, Wait};
pub use upcast::{upcast, UpcastError, EVENT_SCHEMA};
