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
        let start = inner
            .def
            .steps
            .first()
            .map(|s| s.id.clone())
            .unwrap_or_default();
        let mut b = self.push(
            id.clone(),
            StepKind::Subprocess {
                start,
                errors: Vec::new(),
            },
        );
        let at = b.inner.def.steps.len() - 1;
        for (mut s, explicit) in inner.def.steps.into_iter().zip(inner.explicit_next) {
            if s.within.is_none() {
                s.within = Some(id.clone());
            }
            b.inner.def.steps.push(s);
            b.inner.explicit_next.push(explicit);
        }
        b.inner.current = at;
        b
    }
}

impl StepBuilder {
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
                Some((_, StepKind::Subprocess { .. })) if *s != step.id => {}
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
            StepKind::Subprocess { start, .. } => Some(start.as_str()),
            _ => None,
        };
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
