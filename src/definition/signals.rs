//! Signals in the Rust builder: throw one, wait for one, end a wait on one, start on one.

use super::{Boundary, BoundaryEvent, Output, ProcessBuilder, StepBuilder, StepKind};

impl ProcessBuilder {
    /// Start an instance each time `signal` is broadcast (its payload becomes the variables).
    pub fn start_on_signal(mut self, signal: impl Into<String>) -> Self {
        self.def.start_signal = Some(signal.into());
        self
    }

    /// Throw `signal`: every instance waiting for it receives it once this transition
    /// commits; the instance goes on.
    pub fn signal(self, id: impl Into<String>, signal: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Signal {
                signal: signal.into(),
            },
        )
    }

    /// Wait for `signal` (its payload merged into the variables; [`StepBuilder::output`]
    /// puts it under one variable).
    pub fn wait_signal(self, id: impl Into<String>, signal: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::WaitSignal {
                signal: signal.into(),
                output: Output::Merge,
            },
        )
    }
}

impl StepBuilder {
    /// Add a signal throw step.
    pub fn signal(self, id: impl Into<String>, signal: impl Into<String>) -> StepBuilder {
        self.inner.signal(id, signal)
    }

    /// Add a step that waits for a signal.
    pub fn wait_signal(self, id: impl Into<String>, signal: impl Into<String>) -> StepBuilder {
        self.inner.wait_signal(id, signal)
    }

    /// A boundary signal: if `signal` is broadcast while the step waits, the wait ends and the
    /// instance goes on at `next`.
    pub fn or_signal(mut self, signal: impl Into<String>, next: impl Into<String>) -> Self {
        self.last().boundary.push(Boundary {
            on: BoundaryEvent::Signal(signal.into()),
            interrupting: true,
            next: Some(next.into()),
            send: None,
            assign: None,
        });
        self
    }
}
