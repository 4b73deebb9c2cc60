//! Embedded subprocesses: the builder's `subprocess` step and the rules of scopes (a step
//! leads only to steps of its own subprocess; a subprocess starts at a step inside it).

use std::collections::HashMap;

use super::{ProcessBuilder, ProcessDefinition, StepBuilder, StepKind};

/// How deep subprocesses may nest.
pub const MAX_NESTING: usize = 32;

impl ProcessBuilder {
    /// An embedded subprocess: `body` adds the steps inside it (the first one is where it
    /// starts); once every branch inside has ended, the instance goes on after it.
    ///
    /// ```
    /// use longrun::ProcessDefinition;
    /// let def = ProcessDefinition::builder("order")
    ///     .subprocess("review", |b| {
    ///         b.service("check", "check_order").end("reviewed")
    ///     })
    ///     .timeout_after("P2D", "too_late")
    ///     .service("ship", "ship")
    ///     .end("done")
    ///     .end("too_late")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(def.step("check").unwrap().within.as_deref(), Some("review"));
    /// ```
    pub fn subprocess(
        self,
        id: impl Into<String>,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        let id = id.into();
        let inner = body(ProcessBuilder::new(self.def.process.clone())).inner;
        let start = first_of(&inner);
        let mut b = self.push(
            id.clone(),
            StepKind::Subprocess {
                start,
                errors: Vec::new(),
            },
        );
        let at = b.inner.def.steps.len() - 1;
        b.inner.adopt(&id, inner);
        b.inner.current = at;
        b
    }

    /// Append the steps of `inner`, the body of scope `id`, as steps in it.
    fn adopt(&mut self, id: &str, inner: ProcessBuilder) {
        for (mut s, explicit) in inner.def.steps.into_iter().zip(inner.explicit_next) {
            if s.within.is_none() {
                s.within = Some(id.to_string());
            }
            self.def.steps.push(s);
            self.explicit_next.push(explicit);
        }
    }
}

impl ProcessBuilder {
    /// An event subprocess of the process (or, inside a subprocess's body, of that
    /// subprocess): it starts when `trigger` happens while its scope runs; interrupting, it
    /// ends everything else in the scope first. No flow leads to it; the step added next
    /// follows the step before it.
    ///
    /// ```
    /// use longrun::definition::{BoundaryEvent, ProcessDefinition};
    /// let def = ProcessDefinition::builder("order")
    ///     .receive("paid", "PaymentReceived")
    ///     .end("done")
    ///     .event_subprocess("on_cancel", BoundaryEvent::Message("OrderCancelled".into()), true, |b| {
    ///         b.send("tell", "OrderCancelled").end("cancelled")
    ///     })
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(def.step("tell").unwrap().within.as_deref(), Some("on_cancel"));
    /// ```
    pub fn event_subprocess(
        self,
        id: impl Into<String>,
        trigger: super::BoundaryEvent,
        interrupting: bool,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        let boundary = super::Boundary {
            on: trigger,
            interrupting,
            next: None,
            send: None,
            assign: None,
        };
        self.add_event_subprocess(id.into(), None, vec![boundary], body)
    }

    /// An event subprocess that starts on business error `code` raised in its scope and not
    /// caught closer (it always interrupts).
    pub fn error_subprocess(
        self,
        id: impl Into<String>,
        code: impl Into<String>,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        self.add_event_subprocess(id.into(), Some(code.into()), Vec::new(), body)
    }

    fn add_event_subprocess(
        mut self,
        id: String,
        code: Option<String>,
        boundary: Vec<super::Boundary>,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        let inner = body(ProcessBuilder::new(self.def.process.clone())).inner;
        let start = first_of(&inner);
        // Not linked from the step before: only its event starts it.
        self.def.steps.push(super::Step {
            id: id.clone(),
            kind: StepKind::EventSubprocess { start, code },
            next: None,
            boundary,
            compensate: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            within: None,
            multi: None,
            milestone: None,
        });
        self.explicit_next.push(true);
        let at = self.def.steps.len() - 1;
        self.adopt(&id, inner);
        self.current = at;
        StepBuilder { inner: self }
    }
}

impl StepBuilder {
    /// A non-interrupting boundary event with a path of its own: a timer (`TimerSpec`, each
    /// firing of a cycle), a message or a signal (`BoundaryEvent`, each one that arrives).
    /// Each time, the instance also runs from `next`, while the step keeps waiting.
    pub fn meanwhile(
        mut self,
        event: impl Into<super::BoundaryEvent>,
        next: impl Into<String>,
    ) -> Self {
        self.last().boundary.push(super::Boundary {
            on: event.into(),
            interrupting: false,
            next: Some(next.into()),
            send: None,
            assign: None,
        });
        self
    }

    /// Add an event subprocess (see [`ProcessBuilder::event_subprocess`]).
    pub fn event_subprocess(
        self,
        id: impl Into<String>,
        trigger: super::BoundaryEvent,
        interrupting: bool,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        self.inner.event_subprocess(id, trigger, interrupting, body)
    }

    /// Add an error event subprocess (see [`ProcessBuilder::error_subprocess`]).
    pub fn error_subprocess(
        self,
        id: impl Into<String>,
        code: impl Into<String>,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        self.inner.error_subprocess(id, code, body)
    }

    /// Add an embedded subprocess (see [`ProcessBuilder::subprocess`]).
    pub fn subprocess(
        self,
        id: impl Into<String>,
        body: impl FnOnce(ProcessBuilder) -> StepBuilder,
    ) -> StepBuilder {
        self.inner.subprocess(id, body)
    }
    /// Add an event-based gateway.
    pub fn event_gateway(self, id: impl Into<String>) -> StepBuilder {
        self.inner.event_gateway(id)
    }
    /// Add a call activity.
    pub fn call(self, id: impl Into<String>, process: impl Into<String>) -> StepBuilder {
        self.inner.call(id, process)
    }
    /// Add a terminate end step.
    pub fn terminate(self, id: impl Into<String>) -> StepBuilder {
        self.inner.terminate(id)
    }
}

/// The first step of a scope's body (where it starts).
fn first_of(inner: &ProcessBuilder) -> String {
    inner
        .def
        .steps
        .first()
        .map(|s| s.id.clone())
        .unwrap_or_default()
}

/// Check the scopes of a definition, reporting each problem with its path; whether one makes
/// the graph checks meaningless (they are skipped then).
pub(super) fn check_scopes(
    def: &ProcessDefinition,
    index: &HashMap<&str, usize>,
    report: &mut impl FnMut(String, String),
) -> bool {
    let mut broken = false;
    let scope_of = |i: usize| def.steps[i].within.as_deref();
    for (i, step) in def.steps.iter().enumerate() {
        if let Some(s) = &step.within {
            match index.get(s.as_str()).map(|&j| (j, &def.steps[j].kind)) {
                None => {
                    broken = true;
                    report(format!("steps[{i}].in"), format!("unknown step \"{s}\""));
                    continue;
                }
                Some((_, StepKind::Subprocess { .. } | StepKind::EventSubprocess { .. }))
                    if *s != step.id => {}
                Some(_) => {
                    broken = true;
                    report(
                        format!("steps[{i}].in"),
                        format!("step \"{s}\" is not a subprocess"),
                    );
                    continue;
                }
            }
            // No subprocess inside itself, however far down.
            let mut at = Some(s.as_str());
            let mut depth = 0;
            while let Some(scope) = at {
                depth += 1;
                if scope == step.id || depth > MAX_NESTING {
                    broken = true;
                    report(
                        format!("steps[{i}].in"),
                        format!("subprocesses nest in a circle or deeper than {MAX_NESTING}"),
                    );
                    break;
                }
                at = index.get(scope).and_then(|&j| scope_of(j));
            }
        }
    }
    if broken {
        return true;
    }
    if def.steps.first().is_some_and(|s| s.within.is_some()) {
        report(
            "steps[0].in".into(),
            "the first step is where an instance begins: it cannot be inside a subprocess".into(),
        );
    }
    for (i, step) in def.steps.iter().enumerate() {
        let start = match &step.kind {
            StepKind::Subprocess { start, .. } | StepKind::EventSubprocess { start, .. } => {
                Some(start.as_str())
            }
            _ => None,
        };
        if let StepKind::EventSubprocess { code, .. } = &step.kind {
            check_event(i, step, code.as_deref(), def, report);
        }
        if let Some(start) = start {
            match index.get(start) {
                None => {
                    broken = true;
                    report(
                        format!("steps[{i}].start"),
                        format!("unknown step \"{start}\""),
                    );
                }
                Some(&j) if scope_of(j) != Some(step.id.as_str()) => report(
                    format!("steps[{i}].start"),
                    format!("step \"{start}\" is not in subprocess \"{}\"", step.id),
                ),
                Some(_) => {}
            }
            let ends_inside = def.steps.iter().any(|s| {
                s.within.as_deref() == Some(step.id.as_str())
                    && matches!(
                        s.kind,
                        StepKind::End | StepKind::Terminate | StepKind::Error { .. }
                    )
            });
            if !ends_inside {
                report(
                    format!("steps[{i}]"),
                    format!("subprocess \"{}\" has no end step inside it", step.id),
                );
            }
        }
        let mut first_start = start;
        for t in step.targets() {
            if first_start == Some(t) {
                first_start = None;
                continue;
            }
            let Some(&j) = index.get(t) else { continue };
            if scope_of(j) != step.within.as_deref() {
                let place = |s: Option<&str>| match s {
                    None => "the top level".to_string(),
                    Some(s) => format!("subprocess \"{s}\""),
                };
                report(
                    format!("steps[{i}]"),
                    format!(
                        "step \"{}\" (in {}) leads to \"{t}\" (in {}): a step leads only to steps of its own subprocess",
                        step.id,
                        place(step.within.as_deref()),
                        place(scope_of(j)),
                    ),
                );
            }
        }
    }
    broken
}

/// An event subprocess: its one event (or error code), and no flow leading to it.
fn check_event(
    i: usize,
    step: &super::Step,
    code: Option<&str>,
    def: &ProcessDefinition,
    report: &mut impl FnMut(String, String),
) {
    use super::{BoundaryEvent, TimerSpec};
    if let Some(code) = code {
        if !super::validate::is_name(code) {
            report(
                format!("steps[{i}].code"),
                "an error code must be non-empty, without spaces".into(),
            );
        }
    }
    match (step.boundary.as_slice(), code) {
        ([], Some(_)) => {}
        ([b], None) => {
            let name_ok = |n: &str| super::validate::is_message_name(n);
            match &b.on {
                BoundaryEvent::Message(m) if !name_ok(m) => {
                    report(format!("steps[{i}].message"), "a message name must be non-empty, at most 200 bytes, without control characters or spaces at either end".into())
                }
                BoundaryEvent::Signal(s) if !name_ok(s) => {
                    report(format!("steps[{i}].signal"), super::validate::SIGNAL_NAME.into())
                }
                BoundaryEvent::Timer(TimerSpec::Cycle(_)) if b.interrupting => report(
                    format!("steps[{i}].duration"),
                    "a cycle starts a non-interrupting event subprocess (\"interrupting\": false)"
                        .into(),
                ),
                BoundaryEvent::Timer(t) => {
                    if let Err(e) = t.check() {
                        report(format!("steps[{i}].duration"), e);
                    }
                }
                _ => {}
            }
        }
        _ => report(
            format!("steps[{i}]"),
            "an event subprocess starts on one message, signal, timer or error code".into(),
        ),
    }
    for (j, other) in def.steps.iter().enumerate() {
        if other.targets().contains(&step.id.as_str()) {
            report(
                format!("steps[{j}]"),
                format!(
                    "step \"{}\" leads to event subprocess \"{}\", which only its event starts",
                    other.id, step.id
                ),
            );
        }
    }
}
