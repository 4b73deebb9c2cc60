//! The builder's signal steps (throw, wait, boundary, start), inclusive gateways, error
//! end steps and input and output mappings.

use super::{Boundary, BoundaryEvent, Output, ProcessBuilder, StepBuilder, StepKind};

impl ProcessBuilder {
    /// Start an instance whenever a message with this name arrives.
    pub fn start_on_message(mut self, message: impl Into<String>) -> Self {
        self.def.start = Some(super::StartTrigger::new(message));
        self
    }

    /// Start an instance also whenever `message` arrives, at step `at` (or the first step).
    pub fn also_start_on_message(mut self, message: impl Into<String>, at: Option<&str>) -> Self {
        self.def.starts.push(super::StartTrigger {
            message: message.into(),
            at: at.map(str::to_string),
        });
        self
    }

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

impl ProcessBuilder {
    /// Add an inclusive gateway: every route whose condition holds ([`StepBuilder::when`]) is
    /// taken, the default ([`StepBuilder::otherwise`]) when none does; the
    /// [`inclusive_join`](Self::inclusive_join) they lead to waits for exactly those.
    pub fn inclusive(self, id: impl Into<String>) -> StepBuilder {
        self.push(
            id,
            StepKind::Inclusive {
                routes: Vec::new(),
                default: None,
            },
        )
    }

    /// Add the join of an inclusive gateway.
    pub fn inclusive_join(self, id: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::InclusiveJoin)
    }
}

impl StepBuilder {
    /// Add an inclusive gateway.
    pub fn inclusive(self, id: impl Into<String>) -> StepBuilder {
        self.inner.inclusive(id)
    }

    /// Add the join of an inclusive gateway.
    pub fn inclusive_join(self, id: impl Into<String>) -> StepBuilder {
        self.inner.inclusive_join(id)
    }
}

impl ProcessBuilder {
    /// The instance ends here with the business error `code` (BPMN's error end event); a
    /// parent's call step that routes the code ([`StepBuilder::on_error`]) goes on there.
    pub fn error_end(self, id: impl Into<String>, code: impl Into<String>) -> StepBuilder {
        self.push(id, StepKind::Error { code: code.into() })
    }
}

impl StepBuilder {
    /// Add an error end step.
    pub fn error_end(self, id: impl Into<String>, code: impl Into<String>) -> StepBuilder {
        self.inner.error_end(id, code)
    }
}

impl StepBuilder {
    /// An input mapping: the step's job (or called process) also sees `target`, set from
    /// `source` (`=path` or a literal).
    pub fn map_input(mut self, source: impl Into<String>, target: impl Into<String>) -> Self {
        self.last().inputs.push(super::Mapping::new(source, target));
        self
    }

    /// An output mapping: of the step's result, `target` gets `source` (`=path` into the
    /// result, then the variables, or a literal); with any, only the mapped targets are set.
    pub fn map_output(mut self, source: impl Into<String>, target: impl Into<String>) -> Self {
        self.last()
            .outputs
            .push(super::Mapping::new(source, target));
        self
    }
}

impl super::ProcessDefinition {
    /// Names of every message this definition waits for or starts on (not signals: they do
    /// not pass through the inbox).
    pub fn received_messages(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .steps
            .iter()
            .filter_map(|s| match &s.kind {
                StepKind::Receive { message, .. } => Some(message.clone()),
                _ => None,
            })
            .chain(self.steps.iter().flat_map(|s| {
                s.boundary.iter().filter_map(|b| match &b.on {
                    BoundaryEvent::Message(m) => Some(m.clone()),
                    BoundaryEvent::Timer(_) | BoundaryEvent::Signal(_) => None,
                })
            }))
            .chain(self.steps.iter().flat_map(|s| {
                match &s.kind {
                    StepKind::EventGateway { events, .. } => events
                        .iter()
                        .filter_map(|e| match &e.on {
                            BoundaryEvent::Message(m) => Some(m.clone()),
                            BoundaryEvent::Timer(_) | BoundaryEvent::Signal(_) => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                }
            }))
            .chain(
                self.start
                    .iter()
                    .chain(&self.starts)
                    .map(|s| s.message.clone()),
            )
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Check the further message starts: names, no message twice, and each `at` a step of the
/// top level.
pub(super) fn check_starts(
    def: &super::ProcessDefinition,
    index: &std::collections::HashMap<&str, usize>,
    report: &mut impl FnMut(String, String),
) {
    use super::validate::is_message_name;
    if !def.starts.is_empty() && def.start.is_none() {
        report(
            "starts".into(),
            "further message starts come after `start`".into(),
        );
    }
    if !def.starts.is_empty() && (def.start_signal.is_some() || def.start_timer.is_some()) {
        report(
            "starts".into(),
            "a process starts on messages, a signal or a timer, not more than one kind".into(),
        );
    }
    let all: Vec<(String, &super::StartTrigger)> = def
        .start
        .iter()
        .map(|s| ("start".to_string(), s))
        .chain(
            def.starts
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("starts[{i}]"), s)),
        )
        .collect();
    for (k, (path, s)) in all.iter().enumerate() {
        if path != "start" && !is_message_name(&s.message) {
            report(format!("{path}.message"), "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into());
        }
        if all[..k].iter().any(|(_, o)| o.message == s.message) {
            report(
                format!("{path}.message"),
                format!("message \"{}\" starts the process twice", s.message),
            );
        }
        if let Some(at) = &s.at {
            match index.get(at.as_str()).map(|&i| &def.steps[i]) {
                None => report(format!("{path}.at"), format!("unknown step \"{at}\"")),
                Some(step)
                    if step.within.is_some()
                        || matches!(step.kind, super::StepKind::EventSubprocess { .. }) =>
                {
                    report(
                        format!("{path}.at"),
                        format!("step \"{at}\" is not a step of the top level"),
                    )
                }
                Some(_) => {}
            }
        }
    }
}
